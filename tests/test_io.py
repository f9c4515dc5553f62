"""engine.data.io on real files: PNG/JPEG/DICOM decoding, rejections, hashing, stored originals."""
from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from engine.data.io import (
    DICOM_ALLOWED,
    ImageReadError,
    content_hash,
    default_window,
    encode_png_bytes,
    load_mask,
    load_original,
    read_image,
    read_mask,
    save_mask,
    save_original,
    to_cache_array,
    to_uint8,
)
from tests.fixtures_images import gradient, png_with_header_size, write_jpeg, write_png


def _one(path: Path):
    images = read_image(path)
    assert len(images) == 1
    return images[0]


def test_png_gray_rgb_rgba(tmp_path: Path) -> None:
    gray, rgb = gradient(), gradient(channels=3)
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 7, np.uint8)], axis=-1)
    for name, arr, expected in (("g.png", gray, gray), ("c.png", rgb, rgb), ("a.png", rgba, rgb)):
        image = _one(write_png(tmp_path / name, arr))
        assert image.pixels.dtype == np.uint8
        np.testing.assert_array_equal(image.pixels, expected)
        assert image.metadata == {"format": "png", "bit_depth": 8}
        assert image.modality is None and image.window is None and image.patient_id is None


def test_png_16bit_keeps_values(tmp_path: Path) -> None:
    low = gradient(dtype=np.uint16, scale=7)  # max < 32768 -> int16
    high = gradient(dtype=np.uint16, scale=40)  # reaches past 32767 -> float32, values exact
    assert high.max() > 32767
    for arr in (low, high):
        image = _one(write_png(tmp_path / "d.png", arr))
        assert image.metadata["bit_depth"] == 16
        assert image.pixels.dtype in (np.int16, np.float32)
        np.testing.assert_array_equal(image.pixels.astype(np.int64), arr.astype(np.int64))
    rgb16 = gradient(channels=3, dtype=np.uint16, scale=999)
    cv2.imwrite(str(tmp_path / "rgb16.png"), cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
    image = _one(tmp_path / "rgb16.png")
    np.testing.assert_array_equal(image.pixels.astype(np.int64), rgb16.astype(np.int64))


def test_jpeg(tmp_path: Path) -> None:
    ramp = np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1))  # smooth: JPEG keeps it well
    arr = np.stack([ramp, ramp.T, np.full_like(ramp, 128)], axis=-1)
    image = _one(write_jpeg(tmp_path / "x.jpg", arr))
    assert image.pixels.shape == (64, 64, 3) and image.pixels.dtype == np.uint8
    assert image.metadata == {"format": "jpeg", "bit_depth": 8}
    assert np.abs(image.pixels.astype(int) - arr).mean() < 4  # lossy, but the same picture


def test_content_not_extension_decides(tmp_path: Path) -> None:
    arr = gradient()
    write_png(tmp_path / "real.png", arr)
    (tmp_path / "photo.jpg").write_bytes((tmp_path / "real.png").read_bytes())  # a PNG named .jpg
    np.testing.assert_array_equal(_one(tmp_path / "photo.jpg").pixels, arr)
    (tmp_path / "x.png").write_text("hello, I am not a picture\n")
    with pytest.raises(ImageReadError, match=r"not an image \(unrecognised content\)"):
        read_image(tmp_path / "x.png")
    (tmp_path / "notes.dcm").write_text("not DICOM either, just text" * 20)
    with pytest.raises(ImageReadError, match="not an image|corrupt DICOM|no pixel data"):
        read_image(tmp_path / "notes.dcm")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty file \(0 bytes\)"):
        read_image(tmp_path / "empty.png")


@pytest.mark.parametrize("writer,suffix", [(write_png, "png"), (write_jpeg, "jpg")])
def test_truncated_files_are_rejected(tmp_path: Path, writer, suffix: str) -> None:
    rng = np.random.default_rng(0)  # noise does not compress, so half the file is half the pixels
    full = writer(tmp_path / f"full.{suffix}", rng.integers(0, 255, (128, 128), dtype=np.uint8))
    data = full.read_bytes()
    cut = tmp_path / f"cut.{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated or corrupt"):
        read_image(cut)


def test_huge_header_is_refused_without_decoding(tmp_path: Path) -> None:
    bomb = png_with_header_size(tmp_path / "bomb.png", 20000, 20000)
    start = time.perf_counter()
    with pytest.raises(ImageReadError, match=r"image too large: 20000x20000 = 400.0 megapixels \(limit 100\)"):
        read_image(bomb)
    assert time.perf_counter() - start < 1.0


def _json_has_no_identity(meta: dict) -> None:
    text = json.dumps(meta).lower()
    assert not set(meta) - set(DICOM_ALLOWED)
    for word in ("patientname", "patientid", "patientbirthdate", "patient_name", "patient_id", "birth"):
        assert word not in text


def test_dicom_ct_rescaled_and_deidentified() -> None:
    path = get_testdata_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    image = _one(Path(path))
    assert image.pixels.dtype == np.int16 and image.pixels.shape == (128, 128)
    expected = ds.pixel_array.astype(np.int32) * int(ds.RescaleSlope) + int(ds.RescaleIntercept)
    np.testing.assert_array_equal(image.pixels, expected)
    assert image.modality == "CT"
    assert image.patient_id == str(ds.PatientID)
    assert image.window is None  # CT_small carries no window preset
    assert image.metadata["rescale_intercept"] == -1024.0 and image.metadata["rows"] == 128
    assert image.metadata["pixel_spacing"] == [pytest.approx(0.661468)] * 2
    _json_has_no_identity(image.metadata)


def test_dicom_mr_window_and_compressed_syntaxes() -> None:
    image = _one(Path(get_testdata_file("MR_small.dcm")))
    assert image.modality == "MR" and image.window == (600.0, 1600.0)
    assert image.metadata["window_center"] == 600.0 and image.pixels.dtype == np.int16
    _json_has_no_identity(image.metadata)
    for name in ("MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm"):
        np.testing.assert_array_equal(_one(Path(get_testdata_file(name))).pixels, image.pixels, err_msg=name)


def test_dicom_without_preamble_and_without_suffix(tmp_path: Path) -> None:
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    bare = tmp_path / "scan0001"
    ds.save_as(bare, enforce_file_format=False)
    raw = bare.read_bytes()
    bare.write_bytes(raw[132:] if raw[128:132] == b"DICM" else raw)  # strip any preamble
    np.testing.assert_array_equal(_one(bare).pixels, ds.pixel_array)


def test_dicom_without_pixel_data(tmp_path: Path) -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del ds.PixelData
    ds.save_as(tmp_path / "nopix.dcm")
    with pytest.raises(ImageReadError, match="DICOM has no pixel data"):
        read_image(tmp_path / "nopix.dcm")


def test_dicom_monochrome1_is_inverted(tmp_path: Path) -> None:
    original = _one(Path(get_testdata_file("MR_small.dcm")))
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "m1.dcm")
    inverted = _one(tmp_path / "m1.dcm")
    total = inverted.pixels.astype(np.int64) + original.pixels.astype(np.int64)
    assert np.unique(total).size == 1  # x -> const - x: high stored value now displays dark
    assert inverted.window == (float(total.flat[0]) - 600.0, 1600.0)  # preset mirrored with the values


def test_dicom_multiframe_one_image_per_frame() -> None:
    frames = read_image(Path(get_testdata_file("SC_rgb_rle_2frame.dcm")))
    assert len(frames) == 2
    assert [f.metadata["frame_index"] for f in frames] == [0, 1]
    assert all(f.pixels.shape == (100, 100, 3) and f.pixels.dtype == np.uint8 for f in frames)
    assert content_hash(frames[0].pixels) != content_hash(frames[1].pixels)
    dose = read_image(Path(get_testdata_file("rtdose.dcm")))
    assert len(dose) == 15 and len({f.patient_id for f in dose}) == 1


def test_content_hash_is_by_decoded_content(tmp_path: Path) -> None:
    arr = gradient(channels=3)
    write_png(tmp_path / "a.png", arr)
    np.savez(tmp_path / "b.npz", images=arr[None])
    from_npz = np.load(tmp_path / "b.npz")["images"][0]
    assert content_hash(_one(tmp_path / "a.png").pixels) == content_hash(from_npz) == content_hash(arr)
    assert content_hash(arr) != content_hash(arr.view(np.int8))  # same bytes, other dtype
    assert content_hash(arr) != content_hash(arr.reshape(-1, 3))  # same bytes, other shape
    assert content_hash(np.asfortranarray(arr)) == content_hash(arr)


@pytest.mark.parametrize("arr", [
    gradient(), gradient(channels=3), gradient(dtype=np.uint16, scale=5).astype(np.int16) - 1000,
    (gradient().astype(np.float32) / 7.0 - 3.25),
])
def test_save_load_original_round_trip(tmp_path: Path, arr: np.ndarray) -> None:
    saved = save_original(arr, tmp_path / "deep" / "dir" / "img_1")
    assert saved.suffix == (".png" if arr.dtype == np.uint8 else ".npy")
    back = load_original(saved)
    assert back.dtype == arr.dtype
    np.testing.assert_array_equal(back, arr)
    assert sorted(p.name for p in saved.parent.iterdir()) == [saved.name]  # no temp file left


def test_save_original_narrows_to_int16_or_float32(tmp_path: Path) -> None:
    wide = np.array([[0, 70000]], np.int32)
    back = load_original(save_original(wide, tmp_path / "w"))
    assert back.dtype == np.float32 and back.tolist() == [[0.0, 70000.0]]
    assert load_original(save_original(np.array([[1, -5]], np.int64), tmp_path / "n")).dtype == np.int16


def test_masks_round_trip_and_binary_255(tmp_path: Path) -> None:
    mask = (gradient() % 3).astype(np.uint8)
    np.testing.assert_array_equal(load_mask(save_mask(mask, tmp_path / "m" / "7")), mask)
    write_png(tmp_path / "bin.png", np.where(mask > 0, 255, 0).astype(np.uint8))
    np.testing.assert_array_equal(read_mask(tmp_path / "bin.png"), (mask > 0).astype(np.uint8))
    png = encode_png_bytes(gradient(channels=3))
    decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(decoded, gradient(channels=3))


def test_windowing_and_cache_arrays() -> None:
    u8 = gradient()
    assert to_uint8(u8) is u8
    ct = np.linspace(-1000, 1000, 64 * 64).reshape(64, 64).astype(np.int16)
    out = to_uint8(ct, (0.0, 400.0))
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255
    assert out[ct < -200].max() == 0 and out[ct > 200].min() == 255
    center, width = default_window(ct, None)
    assert abs(center) < 20 and 1900 < width <= 2000
    assert default_window(np.zeros((4, 4), np.int16), None)[1] == 1.0
    assert to_cache_array(ct, 32, 1).shape == (32, 32)
    assert to_cache_array(u8, 128, 3).shape == (128, 128, 3)  # enlarged, gray -> RGB
    rgb = gradient(64, 64, channels=3)
    gray = to_cache_array(rgb, 64, 1)
    np.testing.assert_array_equal(gray, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    np.testing.assert_array_equal(to_cache_array(rgb, 64, 3), rgb)  # already that size: no-op
