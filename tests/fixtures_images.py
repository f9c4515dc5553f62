"""Helpers that write real image files for the io/sources tests (no mocks: the decoders see bytes)."""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """../shared/data beside the checkout, resolved from the repo root; MEDSSL_SHARED_DATA overrides."""
    return Path(os.environ.get("MEDSSL_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")


def gradient(h: int = 32, w: int = 48, channels: int = 0, dtype=np.uint8, scale: int = 1) -> np.ndarray:
    """A deterministic, non-constant test array (channels=0 means grayscale)."""
    base = (np.arange(h * w, dtype=np.int64).reshape(h, w) * scale) % (np.iinfo(dtype).max + 1)
    if channels:
        base = np.stack([(base + 40 * c) % (np.iinfo(dtype).max + 1) for c in range(channels)], axis=-1)
    return base.astype(dtype)


def write_png(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format="PNG")
    return path


def write_jpeg(path: Path, arr: np.ndarray, quality: int = 95) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format="JPEG", quality=quality)
    return path


def png_with_header_size(path: Path, width: int, height: int) -> Path:
    """A tiny valid PNG whose IHDR claims width x height (CRC fixed): a decompression-bomb header."""
    write_png(path, np.zeros((4, 4), np.uint8))
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    return path
