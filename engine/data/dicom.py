"""DICOM decoding for engine.data.io: pydicom is imported only when a DICOM is actually read.

Kept apart from io.py so the generic image code stays short; io re-exports DICOM_ALLOWED and
calls read_dicom/dicom_size. Only allow-listed technical tags leave this module (no identifiers
except PatientID, which becomes the item's group for patient-level splits).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from engine.data.library_logs import native_stderr_to_log
from engine.data.pixels import MAX_TOTAL_PIXELS, DecodedImage, ImageReadError, canonical_pixels, check_size

DICOM_ALLOWED = (
    "modality", "rows", "columns", "bits_allocated", "bits_stored", "photometric_interpretation",
    "rescale_slope", "rescale_intercept", "window_center", "window_width", "pixel_spacing",
    "slice_thickness", "body_part_examined", "manufacturer", "frame_index",
)
_PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def _first_float(value) -> float | None:
    try:
        if value is None or value == "":
            return None
        if isinstance(value, (list, tuple)) or hasattr(value, "__getitem__") and not isinstance(value, str):
            value = value[0]
        return float(value)
    except (TypeError, ValueError, IndexError):
        return None


def _dicom_metadata(ds) -> dict:
    """Allow-listed technical tags only, as plain JSON-serialisable python values."""
    meta: dict = {}
    for key, tag, conv in (
        ("modality", "Modality", str), ("rows", "Rows", int), ("columns", "Columns", int),
        ("bits_allocated", "BitsAllocated", int), ("bits_stored", "BitsStored", int),
        ("photometric_interpretation", "PhotometricInterpretation", str),
        ("rescale_slope", "RescaleSlope", _first_float), ("rescale_intercept", "RescaleIntercept", _first_float),
        ("slice_thickness", "SliceThickness", _first_float), ("body_part_examined", "BodyPartExamined", str),
        ("manufacturer", "Manufacturer", str),
    ):
        value = ds.get(tag)
        if value is not None and value != "":
            try:
                meta[key] = conv(value)
            except (TypeError, ValueError):
                pass
    spacing = ds.get("PixelSpacing")
    if spacing:
        try:
            meta["pixel_spacing"] = [float(v) for v in spacing]
        except (TypeError, ValueError):
            pass
    return {k: v for k, v in meta.items() if v is not None}


def read_dicom(path: Path, strict: bool) -> list[DecodedImage]:
    """Decode every frame; io's types are imported here because io imports this module."""
    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path, force=True)
        except Exception as exc:
            raise ImageReadError("corrupt DICOM" if strict else "not an image (unrecognised content)") from exc
    return decode_dataset(ds, strict)


def decode_dataset(ds, strict: bool = True) -> list[DecodedImage]:
    """Every frame of a parsed dataset (a file's, or one fetched over DICOMweb) as de-identified images."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not strict and "SOPClassUID" not in ds and "Rows" not in ds and not any(t in ds for t in _PIXEL_TAGS):
            raise ImageReadError("not an image (unrecognised content)")
        if not any(t in ds for t in _PIXEL_TAGS):
            if "Rows" in ds and "Columns" in ds:  # an image header whose pixels are missing: cut short
                raise ImageReadError("DICOM has no pixel data, though it has image attributes (truncated or "
                                     "stripped file?)")
            raise ImageReadError("DICOM has no pixel data (not an image object)")
        try:
            rows, cols = int(ds.Rows), int(ds.Columns)
            frames = int(ds.get("NumberOfFrames") or 1)
        except (AttributeError, TypeError, ValueError) as exc:
            raise ImageReadError("corrupt DICOM (missing Rows/Columns)") from exc
        check_size(cols, rows)
        if rows * cols * frames > MAX_TOTAL_PIXELS:
            raise ImageReadError(f"image too large: {frames} frames of {cols}x{rows} (limit "
                                 f"{MAX_TOTAL_PIXELS // 1_000_000} megapixels in all)")
        photometric = str(ds.get("PhotometricInterpretation", "")).upper()
        mono = int(ds.get("SamplesPerPixel", 1) or 1) == 1
        window = _dicom_window(ds) if mono else None
        with native_stderr_to_log():  # OpenJPEG prints to fd 2 for malformed JPEG 2000 data
            arr, window = _decode_frames(ds, frames, photometric, mono, window)
    meta = _dicom_metadata(ds)
    if window is not None:
        meta["window_center"], meta["window_width"] = window
    modality = str(ds.get("Modality") or "") or None
    patient = str(ds.get("PatientID") or "").strip() or None
    out = []
    for k in range(frames):
        frame_meta = dict(meta, frame_index=k) if frames > 1 else dict(meta)
        out.append(DecodedImage(arr[k], modality, window, frame_meta, patient, from_dicom=True))
    return out


def _rescale(ds, frame: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """Modality rescale of one frame: straight into int16 when integral and the stored range fits, else float32."""
    if frame.dtype.kind in "iu" and slope.is_integer() and intercept.is_integer() and "BitsStored" in ds:
        lo, hi = _display_range(ds, frame)
        if -32768 <= lo and hi <= 32767:
            return (frame.astype(np.int32) * int(slope) + int(intercept)).astype(np.int16)
    return frame.astype(np.float32) * np.float32(slope) + np.float32(intercept)


def _frames_of(ds, frames: int, mono: bool):
    """Decoded frames one at a time; a decoder that cannot iterate (some JPEG 2000 plugins refuse to fix the
    pixel representation of a read-only frame) falls back to the whole-file array."""
    from pydicom.pixels import iter_pixels

    try:
        first = True
        for frame in iter_pixels(ds):
            yield frame
            first = False
    except Exception:
        if not first:
            raise
        whole = ds.pixel_array
        yield from whole.reshape((frames,) + whole.shape[-(2 if mono else 3):])


def _decode_frames(ds, frames: int, photometric: str, mono: bool,
                   window: tuple[float, float] | None) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Decode and map one frame at a time into one preallocated array, in float32 at most.

    A whole-file pixel_array plus a float64 rescale once took 5.4 GB for a 4.7 MB file (3 frames of
    10000x10000); here the peak is the output array plus one frame.
    """
    from pydicom.pixels import apply_color_lut, apply_rescale

    linear = "ModalityLUTSequence" not in ds
    slope = _first_float(ds.get("RescaleSlope")) or 1.0
    intercept = _first_float(ds.get("RescaleIntercept")) or 0.0
    out: np.ndarray | None = None
    flipped = window
    try:
        for k, frame in enumerate(_frames_of(ds, frames, mono)):
            if k >= frames:
                break
            frame = frame.reshape(frame.shape[-(2 if mono else 3):])
            if photometric == "PALETTE COLOR":  # indices -> RGB through the palette, scaled to 8 bits
                frame = apply_color_lut(frame, ds)
                frame = np.rint(frame / 257.0).astype(np.uint8) if frame.max() > 255 else frame.astype(np.uint8)
                mono, flipped = False, None
            elif mono:
                if not linear:
                    frame = apply_rescale(frame, ds).astype(np.float32)
                elif slope != 1.0 or intercept != 0.0:
                    frame = _rescale(ds, frame, slope, intercept)
                if photometric == "MONOCHROME1":
                    lo, hi = _display_range(ds, frame)
                    frame = np.float32(lo + hi) - frame.astype(np.float32)
                    if window is not None:
                        flipped = (lo + hi - window[0], window[1])
            if out is None:
                out = np.empty((frames, *frame.shape), dtype=frame.dtype if frame.dtype.kind in "biu" else np.float32)
            out[k] = frame
    except ImageReadError:
        raise
    except Exception as exc:
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", syntax) or "unknown transfer syntax"
        reasons = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = "; ".join(reasons[1:] or reasons[:1])  # pydicom lists one line per decoder plugin tried
        raise ImageReadError(f"could not decode DICOM pixel data ({name}): {detail}") from exc
    if out is None:
        raise ImageReadError("DICOM has no decodable frame")
    eight_bit = int(ds.get("BitsAllocated", 16) or 16) == 8
    if out.dtype != np.uint8 and eight_bit and out.size and out.min() >= 0 and out.max() <= 255 \
            and np.array_equal(out, np.round(out)):
        out = out.astype(np.uint8)
    return canonical_pixels(out), flipped


def _dicom_window(ds) -> tuple[float, float] | None:
    center, width = _first_float(ds.get("WindowCenter")), _first_float(ds.get("WindowWidth"))
    if center is None or width is None or width <= 0:
        return None
    return (center, width)


def _display_range(ds, arr: np.ndarray) -> tuple[float, float]:
    """Value range MONOCHROME1 is inverted within: the stored range after rescale, else the data's."""
    if "ModalityLUTSequence" in ds or "BitsStored" not in ds:
        return float(arr.min()), float(arr.max())
    bits = int(ds.BitsStored)
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if int(ds.get("PixelRepresentation", 0)) else (0, 2**bits - 1)
    slope = _first_float(ds.get("RescaleSlope")) or 1.0
    intercept = _first_float(ds.get("RescaleIntercept")) or 0.0
    a, b = sorted((lo * slope + intercept, hi * slope + intercept))
    return a, b


def dicom_size(path: Path) -> tuple[int, int]:
    """(rows, columns) from the header only, skipping pixel data; io.peek_size catches failures."""
    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    return int(ds.Rows), int(ds.Columns)
