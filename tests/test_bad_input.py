"""Bad input gets a clear reason and loses nothing (issue 12): bombs, odd files, wrong values, library noise."""
from __future__ import annotations

import logging
import os
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

from engine.cli import main
from engine.data.io import ImageReadError, read_image
from engine.data.sources import Rejected, SourceError, iter_source
from tests.fixtures_images import gradient, write_png


def _reasons(source: Path) -> dict[str, str]:
    return {r.name: r.reason for r in iter_source(source) if isinstance(r, Rejected)}


def test_npz_declaring_gigabytes_is_refused_before_loading(tmp_path: Path) -> None:
    bomb = tmp_path / "zeros.npz"
    np.savez_compressed(bomb, images=np.zeros((64, 1024, 1024), np.uint8))  # 64 MiB of zeros, ~65 KB on disk
    with zipfile.ZipFile(bomb) as zf:  # claim 2 GiB in the header: patch the shape, keep the tiny payload
        payload = zf.read("images.npy")
    header = payload[: payload.index(b"\n") + 1].replace(b"(64, 1024, 1024)", b"(2048, 1024, 1024)")
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("images.npy", header.ljust(len(payload[: payload.index(b"\n") + 1])) + payload[len(header):])
    tracemalloc.start()
    reasons = _reasons(bomb)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "GiB" in reasons["zeros.npz"] and "limit" in reasons["zeros.npz"]
    assert peak < 50 * 2**20  # refused from the header: nothing near 2 GiB was allocated


def test_npz_wrong_values_are_rejected_item_by_item(tmp_path: Path) -> None:
    images = np.stack([gradient(8, 8).astype(np.float32)] * 4)
    images[1, 0, 0] = np.nan
    images[2, 3, 3] = np.inf
    np.savez(tmp_path / "train.npz", images=images, labels=np.array([0, 1, -3, -1]))
    out = list(iter_source(tmp_path / "train.npz"))
    reasons = {r.name: r.reason for r in out if isinstance(r, Rejected)}
    assert "NaN or infinite" in reasons["train[1]"] and "NaN or infinite" in reasons["train[2]"]
    kept = [i for i in out if not isinstance(i, Rejected)]
    assert [i.label for i in kept] == [0, None]  # -1 = unlabeled; -3 would have been rejected
    np.savez(tmp_path / "neg.npz", images=images[:1] * 0, labels=np.array([-3]))
    assert "not a class index" in _reasons(tmp_path / "neg.npz")["neg[0]"]
    np.savez(tmp_path / "empty.npz", images=np.zeros((0, 8, 8), np.uint8))
    assert "empty" in _reasons(tmp_path / "empty.npz")["empty.npz"]
    np.savez(tmp_path / "complex.npz", images=np.zeros((2, 8, 8), np.complex64))
    assert "complex64 pixels" in _reasons(tmp_path / "complex.npz")["complex.npz"]
    np.save(tmp_path / "plain.npy", np.zeros((2, 8, 8), np.uint8))
    (tmp_path / "plain.npy").rename(tmp_path / "plain.npz")
    assert "not a zip of .npy arrays" in _reasons(tmp_path / "plain.npz")["plain.npz"]


def test_zero_size_bundle_import_leaves_no_project(tmp_path: Path, capsys) -> None:
    np.savez(tmp_path / "empty.npz", images=np.zeros((0, 8, 8), np.uint8))
    assert main(["import", "--project", "e", "--task", "multiclass", "--classes", "a,b",
                 "--source", str(tmp_path / "empty.npz")]) == 1
    capsys.readouterr()
    assert main(["status", "--project", "e"]) == 2


def test_device_files_fifos_and_broken_links_get_their_own_reason(tmp_path: Path, capsys) -> None:
    for special in (Path("/dev/zero"), tmp_path / "fifo"):
        if special.name == "fifo":
            os.mkfifo(special)
        with pytest.raises(SourceError, match="not a regular file or folder"):
            list(iter_source(special))
        assert main(["import", "--project", "f", "--task", "multiclass", "--source", str(special)]) == 2
        assert "Traceback" not in capsys.readouterr().err
    root = tmp_path / "src"
    write_png(root / "a" / "x.png", gradient())
    (root / "a" / "gone.png").symlink_to(tmp_path / "missing.png")
    assert _reasons(root)["a/gone.png"] == "broken symbolic link"


def test_dicom_header_bomb_is_refused_without_decoding(tmp_path: Path) -> None:
    ds = pydicom.dcmread(get_testdata_file("MR_small_RLE.dcm"))
    ds.Rows, ds.Columns, ds.NumberOfFrames = 10000, 10000, 3
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.save_as(tmp_path / "bomb.dcm", enforce_file_format=True)
    start = time.perf_counter()
    with pytest.raises(ImageReadError, match="too large"):
        read_image(tmp_path / "bomb.dcm")
    assert time.perf_counter() - start < 2.0


def test_multiframe_dicom_decodes_frame_by_frame_in_bounded_memory(tmp_path: Path) -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    frames, side = 3, 2048
    pixels = (np.arange(frames * side * side, dtype=np.uint32) % 4000).astype(np.uint16).reshape(frames, side, side)
    ds.Rows = ds.Columns = side
    ds.NumberOfFrames = frames
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(tmp_path / "multi.dcm", enforce_file_format=True)
    tracemalloc.start()
    decoded = read_image(tmp_path / "multi.dcm")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    final = sum(d.pixels.nbytes for d in decoded)
    assert len(decoded) == frames and decoded[0].pixels.dtype == np.int16
    np.testing.assert_array_equal(decoded[2].pixels, pixels[2].astype(np.int32) - 1024)
    # the file's raw bytes (1x) + the result (1x) + one frame's temporaries; the old whole-file path held the raw
    # bytes, a uint16 copy and a float64 rescale of every frame at once (>= 6x the result)
    assert peak < 4 * final, (peak, final)


def test_library_tracebacks_go_to_logs_not_the_console(tmp_path: Path, capfd, _isolated_home: Path) -> None:
    source = tmp_path / "dcm"
    source.mkdir()
    # pydicom logs each declining decoder plugin; OpenJPEG (C) prints to fd 2 for the malformed JPEG 2000 one
    for name in ("JPEG-lossy.dcm", "CT_small.dcm", "JPEG2000-embedded-sequence-delimiter.dcm"):
        (source / name).write_bytes(Path(get_testdata_file(name)).read_bytes())
    try:
        assert main(["import", "--project", "d", "--task", "multiclass", "--classes", "a,b",
                     "--source", str(source)]) == 0
    finally:
        logging.getLogger("pydicom").handlers.clear()
        logging.getLogger("pydicom").propagate = True
    captured = capfd.readouterr()
    assert captured.err == "" and "JPEG-lossy.dcm" in captured.out
    assert "could not decode DICOM pixel data" in captured.out
    assert "Traceback" in (_isolated_home / "logs" / "libraries.log").read_text()


def test_a_class_only_one_image_carries_is_flagged_as_a_likely_typo(tmp_path: Path, capsys) -> None:
    root = tmp_path / "src"
    for i in range(24):
        write_png(root / f"{i}.png", gradient(16, 16, scale=i + 1))
    rows = ["file,label"] + [f"{i}.png,{'normal' if i % 2 else 'pneumonia'}" for i in range(23)] + ["23.png,pneumonai"]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    assert main(["import", "--project", "t", "--task", "multiclass", "--source", str(root),
                 "--labels", str(tmp_path / "labels.csv")]) == 0
    out = capsys.readouterr()
    assert "'pneumonai' has only 1 of 24 labels" in out.out + out.err
