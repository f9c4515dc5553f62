"""All image format code: decode PNG/JPEG/BMP/TIFF/DICOM to arrays, store originals, map to uint8.

Torch-free and db-free so the app can import uploads in its own process. Formats are detected
by content, never by extension, and sizes are checked from the header before any pixel is
decoded, so a mislabelled or hostile file is refused cheaply with a human-readable reason.
"""
from __future__ import annotations

import hashlib
import io as _io
import os
import struct
import uuid
from pathlib import Path

import cv2
import numpy as np
from PIL import BmpImagePlugin, Image, ImageOps, JpegImagePlugin, PngImagePlugin, TiffImagePlugin

# DICOM_ALLOWED, the display mapping and the decoded-pixel types are re-exported: callers import them from io.
from engine.data.dicom import DICOM_ALLOWED, dicom_size, read_dicom  # noqa: F401
from engine.data.display import default_window, to_cache_array, to_uint8  # noqa: F401
from engine.data.pixels import (  # noqa: F401
    MAX_PIXELS,
    MAX_TOTAL_PIXELS,
    DecodedImage,
    ImageReadError,
    canonical_pixels,
    check_size,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PIL_PLUGINS = {
    "png": PngImagePlugin.PngImageFile, "jpeg": JpegImagePlugin.JpegImageFile,
    "bmp": BmpImagePlugin.BmpImageFile, "tiff": TiffImagePlugin.TiffImageFile,
}


def sniff_format(head: bytes) -> str | None:
    """Format from the first bytes: 'png', 'jpeg', 'bmp', 'tiff', 'dicom' or None."""
    if head.startswith(PNG_MAGIC):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"BM") and len(head) >= 26:
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    # DICOM without the 128-byte preamble starts with a group 0002 or 0008 tag (either endianness).
    if head[:2] in (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08") and len(head) >= 8:
        return "dicom?"
    return None


def _head(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError as exc:
        raise ImageReadError(f"cannot read file ({exc.strerror or exc})") from exc
    if size == 0:
        raise ImageReadError("empty file (0 bytes)")
    return head


def read_image(path: Path) -> list[DecodedImage]:
    """Decode a file into one DecodedImage per frame (DICOM multi-frame) or a single one.

    Pixels: (H, W) or (H, W, 3) RGB, alpha dropped. uint8 for 8-bit data; deeper or signed data
    (16-bit PNG, DICOM after the modality LUT, MONOCHROME1 inverted) as int16 when the values fit,
    else float32 -- the same dtype save_original stores, so a hash of the decoded array equals
    the hash of the stored original.
    """
    path = Path(path)
    head = _head(path)
    fmt = sniff_format(head)
    if fmt in _PIL_PLUGINS:
        return [_read_pillow(path, fmt, head)]
    if fmt == "dicom" or fmt == "dicom?" or (fmt is None and path.suffix.lower() in (".dcm", ".dicom")):
        return read_dicom(path, strict=fmt == "dicom")
    raise ImageReadError("not an image (unrecognised content)")


def _read_pillow(path: Path, fmt: str, head: bytes) -> DecodedImage:
    name = fmt.upper()
    bit_depth = 8
    if fmt == "png":
        width, height, bit_depth, color_type = struct.unpack(">IIBB", head[16:26])
        check_size(width, height)
        if bit_depth == 16 and color_type in (2, 6):  # 16-bit colour: Pillow would truncate to 8 bits
            return _read_png16_colour(path)
    try:
        with open(path, "rb") as fh:
            im = _PIL_PLUGINS[fmt](fh)
            check_size(*im.size)
            im.load()
            if im.getexif().get(0x0112, 1) != 1:  # honour the camera's orientation tag
                im = ImageOps.exif_transpose(im)
            arr = _pil_to_array(im)
    except ImageReadError:
        raise
    except Exception as exc:  # Pillow raises OSError/SyntaxError/ValueError/EOFError for bad data
        raise ImageReadError(f"truncated or corrupt {name}") from exc
    if arr.dtype != np.uint8:
        bit_depth = 16 if arr.dtype == np.uint16 else 32
    return DecodedImage(canonical_pixels(arr), metadata={"format": fmt, "bit_depth": bit_depth})


def _pil_to_array(im: Image.Image) -> np.ndarray:
    if im.mode == "P":
        im = im.convert("RGBA")
        rgb = np.asarray(im)[..., :3]
        return rgb[..., 0].copy() if (rgb == rgb[..., :1]).all() else np.ascontiguousarray(rgb)
    if im.mode in ("1", "LA", "La", "L"):
        return np.asarray(im.convert("L"))
    if im.mode in ("RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        return np.asarray(im.convert("RGB"))
    if im.mode.startswith("I;16"):
        return np.asarray(im).astype(np.uint16)
    if im.mode in ("I", "F"):
        return np.asarray(im)
    raise ImageReadError(f"unsupported image mode {im.mode}")


def _read_png16_colour(path: Path) -> DecodedImage:
    arr = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.ndim != 3:
        raise ImageReadError("truncated or corrupt PNG")
    arr = cv2.cvtColor(arr[..., :3], cv2.COLOR_BGR2RGB)
    return DecodedImage(canonical_pixels(arr), metadata={"format": "png", "bit_depth": 16})


def peek_size(path: Path) -> tuple[int, int] | None:
    """(height, width) from the header only, or None when unknown; for choosing a project size."""
    try:
        head = _head(Path(path))
        fmt = sniff_format(head)
        if fmt == "png":
            width, height = struct.unpack(">II", head[16:24])
            return height, width
        if fmt in _PIL_PLUGINS:
            with open(path, "rb") as fh:
                width, height = _PIL_PLUGINS[fmt](fh).size
            return height, width
        if fmt in ("dicom", "dicom?") or Path(path).suffix.lower() in (".dcm", ".dicom"):
            return dicom_size(Path(path))
    except Exception:  # noqa: BLE001 -- a best-effort hint; read_image reports the real reason later
        return None
    return None


def content_hash(pixels: np.ndarray) -> str:
    """sha256 over dtype, shape and bytes: duplicates are found by decoded content, not file bytes."""
    arr = np.asarray(pixels)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    digest = hashlib.sha256(f"{arr.dtype.str}|{arr.shape}|".encode())
    digest.update(np.ascontiguousarray(arr).data)
    return digest.hexdigest()


def _atomic_write(data: bytes, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def encode_png_bytes(pixels_uint8: np.ndarray) -> bytes:
    """Lossless PNG bytes of a uint8 gray or RGB array (thumbnails, masks, originals)."""
    arr = np.asarray(pixels_uint8)
    if arr.dtype != np.uint8:
        raise ValueError(f"encode_png_bytes needs uint8, got {arr.dtype}")
    if arr.ndim == 3:
        arr = cv2.cvtColor(np.ascontiguousarray(arr[..., :3]), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", arr)
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def save_original(pixels: np.ndarray, dest_stem: Path) -> Path:
    """Store the display original losslessly: uint8 as PNG, anything else as .npy (int16/float32)."""
    dest_stem = Path(dest_stem)
    if pixels.dtype == np.uint8:
        return _atomic_write(encode_png_bytes(pixels), dest_stem.with_name(dest_stem.name + ".png"))
    buf = _io.BytesIO()
    np.save(buf, np.ascontiguousarray(canonical_pixels(pixels)), allow_pickle=False)
    return _atomic_write(buf.getvalue(), dest_stem.with_name(dest_stem.name + ".npy"))


def load_original(path: Path) -> np.ndarray:
    """Inverse of save_original (RGB channel order for colour)."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        return np.load(path, allow_pickle=False)
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageReadError(f"cannot read stored original {path.name}")
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB) if arr.ndim == 3 else arr


def save_mask(mask: np.ndarray, dest_stem: Path) -> Path:
    """uint8 class-index mask as a lossless PNG, written atomically."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    dest_stem = Path(dest_stem)
    return _atomic_write(encode_png_bytes(mask.astype(np.uint8, copy=False)), dest_stem.with_name(dest_stem.name + ".png"))


def load_mask(path: Path) -> np.ndarray:
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageReadError(f"cannot read mask {Path(path).name}")
    return arr if arr.ndim == 2 else arr[..., 0]


def normalize_mask(arr: np.ndarray) -> np.ndarray:
    """Any source mask -> uint8 (H, W) class indices; a 0/255 binary mask becomes 0/1."""
    if arr.ndim == 3:
        arr = arr.max(axis=2)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if arr.dtype != np.uint8:
        if arr.size and (arr.min() < 0 or arr.max() > 255 or not np.array_equal(arr, np.round(arr))):
            raise ImageReadError("mask values must be class indices 0-255")
        arr = arr.astype(np.uint8)
    counts = np.bincount(arr.ravel(), minlength=256)
    if counts[1:255].sum() == 0 and counts[255]:
        arr = (arr > 0).astype(np.uint8)
    return np.ascontiguousarray(arr)


def read_mask(path: Path) -> np.ndarray:
    """Read a source mask file; JPEG masks are thresholded because lossy noise is not a class."""
    image = read_image(path)[0]
    if image.metadata.get("format") == "jpeg":
        gray = image.pixels if image.pixels.ndim == 2 else image.pixels.max(axis=2)
        return (gray > 127).astype(np.uint8)
    return normalize_mask(image.pixels)
