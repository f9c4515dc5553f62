"""The bad inputs of the reliability pass: one source per kind of refusal seen in the abuse pass, bad CLI
arguments, and hostile zips. Generated on the fly (nothing hostile is committed)."""
from __future__ import annotations

import os
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def png(path: Path, arr: np.ndarray) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), arr)
    return path


def bad_sources(root: Path) -> dict[str, Path]:
    """One source per kind of bad input seen in the abuse pass (files the import must refuse)."""
    import pydicom
    from pydicom.data import get_testdata_file

    rng = np.random.default_rng(0)
    out: dict[str, Path] = {}

    def spot(name: str) -> Path:
        folder = root / name
        folder.mkdir(parents=True)
        return folder

    (spot("text_as_png") / "x.png").write_text("not an image")
    (spot("empty_png") / "x.png").write_bytes(b"")
    good = png(root / "tmp" / "g.png", rng.integers(0, 255, (32, 32), dtype=np.uint8))
    (spot("truncated_png") / "x.png").write_bytes(good.read_bytes()[:60])
    bomb = bytearray(good.read_bytes())
    bomb[16:24] = struct.pack(">II", 20000, 20000)
    bomb[29:33] = struct.pack(">I", zlib.crc32(bytes(bomb[12:29])) & 0xFFFFFFFF)
    (spot("png_header_bomb") / "x.png").write_bytes(bytes(bomb))
    npz = spot("npz_files")
    np.savez(npz / "pickled.npz", images=np.array([object()], dtype=object))
    np.save(npz / "plain.npy", np.zeros((2, 8, 8), np.uint8))
    (npz / "plain.npy").rename(npz / "plain_npy.npz")
    np.savez(npz / "empty.npz", images=np.zeros((0, 8, 8), np.uint8))
    np.savez(npz / "complex.npz", images=np.zeros((2, 8, 8), np.complex64))
    nan = np.zeros((3, 8, 8), np.float32)
    nan[1, 0, 0] = np.nan
    np.savez(npz / "nan.npz", images=nan)
    np.savez(npz / "negative_label.npz", images=np.zeros((2, 8, 8), np.uint8), labels=np.array([-3, 0]))
    for name in sorted(os.listdir(npz)):
        out[f"npz:{name}"] = npz / name
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.Rows, ds.Columns, ds.NumberOfFrames = 10000, 10000, 3
    ds.save_as(spot("dicom_header_bomb") / "x.dcm", enforce_file_format=True)
    ct = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    (spot("dicom_truncated") / "x.dcm").write_bytes(ct[: len(ct) // 2])
    (spot("dicom_no_pixels") / "x.dcm").write_bytes(Path(get_testdata_file("rtplan.dcm")).read_bytes())
    (spot("broken_link") / "x.png").symlink_to(root / "missing.png")
    (spot("escaping_link") / "x.png").symlink_to("/etc/hostname")
    fifo = root / "fifo"
    os.mkfifo(fifo)
    out.update({name: root / name for name in ("text_as_png", "empty_png", "truncated_png", "png_header_bomb",
                                              "dicom_header_bomb", "dicom_truncated", "dicom_no_pixels",
                                              "broken_link", "escaping_link")})
    out.update({"fifo": fifo, "dev_zero": Path("/dev/zero"), "missing": root / "does-not-exist"})
    return out


BAD_ARGS = [["train", "--epochs", "-5"], ["train", "--epochs", "0"], ["train", "--budget-minutes", "-1"],
            ["train", "--budget-minutes", "nan"], ["train", "--nproc", "0"], ["train", "--nproc", "-3"],
            ["train", "--image-size", "0"], ["train", "--image-size", "100000"], ["train", "--method", "secl"],
            ["train", "--backbone", "unet"], ["analyze", "--checkpoint", "9999"], ["retry", "--job", "999"],
            ["status", "--db", "foo://bar"], ["status", "--db", "postgresql://x@127.0.0.1:1/x"]]


def zip_inputs(work: Path) -> list[dict[str, Any]]:
    from engine.data.archive import ArchiveError, safe_extract

    rows = []
    cases: dict[str, Callable[[zipfile.ZipFile], None]] = {
        "zip traversal": lambda zf: zf.writestr("../../etc/x.png", b"x"),
        "zip symlink": lambda zf: zf.writestr(_link_info(), "/etc/passwd"),
    }
    for name, fill in cases.items():
        path = work / f"{name.replace(' ', '_')}.zip"
        with zipfile.ZipFile(path, "w") as zf:
            fill(zf)
        try:
            safe_extract(path, work / "unzipped" / path.stem)
            rows.append({"input": name, "exit": 0, "crash": False, "peak_mb": 0.0, "refused_with_reason": False})
        except ArchiveError as error:
            rows.append({"input": name, "exit": 2, "crash": False, "peak_mb": 0.0, "refused_with_reason": bool(str(error))})
    return rows


def _link_info() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("link.png")
    info.external_attr = 0o120777 << 16
    return info
