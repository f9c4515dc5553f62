"""engine.data.sources on real trees written into tmp_path (and the staged npz when present)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from engine.data.sources import Rejected, SourceItem, inspect_source, iter_source
from tests.fixtures_images import gradient, shared_data_dir, write_png


def _split(source: Path, labels_csv: Path | None = None) -> tuple[dict[str, SourceItem], dict[str, str]]:
    items, rejected = {}, {}
    for out in iter_source(source, labels_csv):
        if isinstance(out, Rejected):
            rejected[out.name] = out.reason
        else:
            items[out.name] = out
    return items, rejected


def test_staged_chest_npz() -> None:
    path = shared_data_dir() / "chest_xray_pneumonia_64" / "val.npz"
    if not path.exists():
        pytest.skip(f"real data not available: {path} is missing (set MEDSSL_SHARED_DATA)")
    info = inspect_source(path)
    assert (info.kind, info.total, info.split, info.image_size) == ("npz", 554, "val", 64)
    assert info.class_names == ["normal", "pneumonia"] and not info.has_masks
    items = list(iter_source(path))
    assert len(items) == 554 and all(isinstance(i, SourceItem) for i in items)
    assert {i.label for i in items} == {0, 1} and all(type(i.label) is int for i in items)
    assert all(i.group and i.path is None for i in items)
    assert items[0].image.pixels.shape == (64, 64) and items[0].image.pixels.dtype == np.uint8
    assert items[0].name.endswith(".jpeg") and "labels_subtype" in items[0].image.metadata


def test_tiny_npz_with_masks_and_groups(tmp_path: Path) -> None:
    images = np.stack([gradient(16, 16, channels=3, scale=k + 1) for k in range(3)])
    masks = np.zeros((3, 16, 16), np.uint8)
    masks[:, 4:8, 4:8] = 255
    np.savez(tmp_path / "test.npz", images=images, labels=np.array([2, 0, -1]), masks=masks,
             groups=np.array(["p1", "p1", ""]))
    info = inspect_source(tmp_path / "test.npz")
    assert (info.total, info.split, info.image_size, info.has_masks, info.class_names) == (3, "test", 16, True, None)
    items, rejected = _split(tmp_path / "test.npz")
    assert not rejected and list(items) == ["test[0]", "test[1]", "test[2]"]
    assert [i.label for i in items.values()] == [2, 0, None]
    assert [i.group for i in items.values()] == ["p1", "p1", None]
    assert all(set(np.unique(i.mask)) == {0, 1} for i in items.values())  # 255 -> class 1
    np.testing.assert_array_equal(items["test[1]"].image.pixels, images[1])


def test_bad_npz_bundles_become_one_rejection(tmp_path: Path) -> None:
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 this is not a zip archive at all")
    np.savez(tmp_path / "noimages.npz", labels=np.arange(3))
    np.savez(tmp_path / "pickled.npz", images=np.array([object(), object()], dtype=object))
    np.savez(tmp_path / "badmask.npz", images=np.zeros((2, 8, 8), np.uint8), masks=np.zeros((2, 4, 4), np.uint8))
    for name, reason in (("corrupt.npz", "corrupt or unreadable npz"), ("noimages.npz", "no 'images' array"),
                         ("pickled.npz", "corrupt or unreadable npz"),
                         ("badmask.npz", "mask size 4x4 does not match image size 8x8")):
        out = list(iter_source(tmp_path / name))
        assert len(out) == 1 and isinstance(out[0], Rejected) and reason in out[0].reason, (name, out)


def test_folder_per_class_with_dataset_json(tmp_path: Path) -> None:
    root = tmp_path / "src"
    write_png(root / "NORMAL" / "a.png", gradient())
    write_png(root / "PNEUMONIA" / "sub" / "b.png", gradient(scale=3))
    write_png(root / "PNEUMONIA" / "c.png", gradient(scale=5))
    (root / "README.md").write_text("about this set")
    (root / "NORMAL" / "notes.txt").write_text("ignored")
    (root / ".DS_Store").write_text("hidden")
    info = inspect_source(root)
    assert (info.kind, info.layout, info.total, info.ignored) == ("folder", "class_folders", 3, 2)
    assert info.class_names == ["NORMAL", "PNEUMONIA"] and info.image_size is None  # 32x48: not square
    (root / "dataset.json").write_text(json.dumps({"classes": ["normal", "pneumonia"]}))
    assert inspect_source(root).class_names == ["normal", "pneumonia"]
    items, rejected = _split(root)
    assert not rejected
    assert {n: i.label for n, i in items.items()} == {
        "NORMAL/a.png": "normal", "PNEUMONIA/c.png": "pneumonia", "PNEUMONIA/sub/b.png": "pneumonia"}
    assert items["NORMAL/a.png"].path == (root / "NORMAL" / "a.png").resolve()
    assert [o.name for o in iter_source(root)] == list(items)  # deterministic order


def test_plain_folder_and_single_files(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    for k, rel in enumerate(["a.png", "b.png", "nested/c.png"]):
        write_png(root / rel, gradient(24, 24, scale=k + 1))
    (root / "x.png").write_text("not really a png")
    info = inspect_source(root)
    assert (info.layout, info.total, info.image_size) == ("plain", 4, None)
    (root / "x.png").unlink()
    assert inspect_source(root).image_size == 24
    (root / "x.png").write_text("not really a png")
    items, rejected = _split(root)
    assert rejected == {"x.png": "not an image (unrecognised content)"}
    assert sorted(items) == ["a.png", "b.png", "nested/c.png"] and all(i.label is None for i in items.values())
    single = list(iter_source(root / "a.png"))
    assert len(single) == 1 and single[0].name == "a.png" and inspect_source(root / "a.png").kind == "file"
    frames = list(iter_source(Path(get_testdata_file("SC_rgb_rle_2frame.dcm"))))
    assert [f.name for f in frames] == ["SC_rgb_rle_2frame.dcm#frame0", "SC_rgb_rle_2frame.dcm#frame1"]
    assert frames[0].group == frames[1].group == "ID1"  # raw PatientID; the importer HMACs it
    with pytest.raises(FileNotFoundError):
        inspect_source(tmp_path / "missing")


def test_flat_folder_with_single_label_csv(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    for k, name in enumerate(["a.png", "b.png", "c.png", "sub/d.png"]):
        write_png(root / name, gradient(scale=k + 1))
    write_png(tmp_path / "outside.png", gradient(scale=9))
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("filename,label,patient_id\na.png,benign,P1\nb.png,malignant,P2\nsub/d.png,benign,\n"
                        "ghost.png,benign,P3\n../outside.png,benign,P4\n/etc/passwd,benign,P5\na.png,malignant,P1\n")
    info = inspect_source(root, csv_path)
    assert (info.layout, info.class_names, info.multi_label, info.total) == ("csv", ["benign", "malignant"], False, 4)
    items, rejected = _split(root, csv_path)
    assert {n: i.label for n, i in items.items()} == {
        "a.png": "benign", "b.png": "malignant", "c.png": None, "sub/d.png": "benign"}
    assert items["a.png"].group == "P1" and items["sub/d.png"].group is None
    assert rejected == {"ghost.png": "file listed in CSV not found", "../outside.png": "path escapes the source root",
                        "/etc/passwd": "path escapes the source root", "a.png": "file listed twice in the CSV"}


def test_multi_label_csv_found_in_root(tmp_path: Path) -> None:
    root = tmp_path / "ml"
    for k, name in enumerate(["1.png", "2.png", "3.png"]):
        write_png(root / name, gradient(scale=k + 1))
    (root / "labels.csv").write_text("image,effusion,nodule,mass\n1.png,1,0,1\n2.png,0,0,0\n3.png,1,maybe,0\n")
    info = inspect_source(root)  # labels.csv in the root is picked up without --labels
    assert (info.layout, info.multi_label, info.class_names) == ("csv_multilabel", True, ["effusion", "nodule", "mass"])
    items, rejected = _split(root)
    assert items["1.png"].label == ["effusion", "mass"] and items["2.png"].label == []
    assert rejected == {"3.png": "CSV value for class 'nodule' is not 0 or 1"}


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks on this platform")
def test_symlinks_out_of_the_root_are_rejected(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_png(root / "own.png", gradient())
    outside = write_png(tmp_path / "secret" / "s.png", gradient(scale=2))
    (root / "leak.png").symlink_to(outside)
    (root / "leakdir").symlink_to(outside.parent, target_is_directory=True)
    (root / "alias.png").symlink_to(root / "own.png")  # inside the root: fine
    items, rejected = _split(root)
    assert rejected == {"leak.png": "path escapes the source root", "leakdir": "path escapes the source root"}
    assert sorted(items) == ["alias.png", "own.png"]
    csv_path = root / "l.csv"
    csv_path.write_text("filename,label\nleakdir/s.png,x\n")
    assert _split(root, csv_path)[1]["leakdir/s.png"] == "path escapes the source root"


def test_image_mask_pairs_both_layouts(tmp_path: Path) -> None:
    mask = np.zeros((32, 48), np.uint8)
    mask[5:9, 5:20] = 255
    beside = tmp_path / "beside"
    write_png(beside / "x.png", gradient(channels=3))
    write_png(beside / "x_mask.png", mask)
    write_png(beside / "y.png", gradient(scale=2))
    items, rejected = _split(beside)
    assert not rejected and sorted(items) == ["x.png", "y.png"]
    np.testing.assert_array_equal(items["x.png"].mask, (mask > 0).astype(np.uint8))
    assert items["y.png"].mask is None and inspect_source(beside).has_masks
    split_dirs = tmp_path / "split"
    write_png(split_dirs / "images" / "p.png", gradient())
    write_png(split_dirs / "images" / "q.png", gradient(scale=2))
    write_png(split_dirs / "masks" / "p.png", (mask > 0).astype(np.uint8) * 2)
    write_png(split_dirs / "masks" / "q.png", np.zeros((64, 64), np.uint8))
    write_png(split_dirs / "masks" / "orphan.png", mask)
    info = inspect_source(split_dirs)
    assert (info.layout, info.total, info.class_names) == ("plain", 2, None)  # images/ + masks/ are no classes
    items, rejected = _split(split_dirs)
    assert list(items) == ["images/p.png"]
    assert set(np.unique(items["images/p.png"].mask)) == {0, 2}  # class indices kept as stored
    assert rejected == {"images/q.png": "mask size 64x64 does not match image size 48x32",
                        "masks/orphan.png": "mask has no matching image"}


def test_dicom_folder_without_suffixes(tmp_path: Path) -> None:
    root = tmp_path / "dicoms"
    root.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), root / "IM0001")
    shutil.copy(get_testdata_file("MR_small.dcm"), root / "1.2.840.10008.5.99")
    (root / "DICOMDIR").write_bytes(b"ignored by name")
    items, rejected = _split(root)
    assert not rejected and sorted(items) == ["1.2.840.10008.5.99", "IM0001"]
    assert items["IM0001"].group == "1CT1" and items["IM0001"].image.modality == "CT"
    assert inspect_source(root).ignored == 1


def test_csv_variants_and_odd_files(tmp_path: Path) -> None:
    root = tmp_path / "odd"
    write_png(root / "ISIC_1.png", gradient())
    write_png(root / "ISIC_2.png", gradient(scale=2))
    csv_path = tmp_path / "no_header.csv"
    csv_path.write_text("ISIC_1.png,nevus\nISIC_2,melanoma\n")  # no header row; a name without extension
    items, rejected = _split(root, csv_path)
    assert not rejected and {n: i.label for n, i in items.items()} == {"ISIC_1.png": "nevus", "ISIC_2.png": "melanoma"}
    (tmp_path / "swapped.csv").write_text("diagnosis,image_id\nnevus,ISIC_1\n")  # filename column by name
    assert _split(root, tmp_path / "swapped.csv")[0]["ISIC_1.png"].label == "nevus"
    (root / "dangling.png").symlink_to(root / "nowhere.png")
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "pipe.png")  # must be reported, never opened (it would block)
    _, rejected = _split(root)
    assert rejected["dangling.png"] == "broken symbolic link"
    assert rejected.get("pipe.png", "not a regular file") == "not a regular file"
