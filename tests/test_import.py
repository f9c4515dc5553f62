"""Import through the real CLI: real chest X-rays, a folder of good and bad files, DICOM de-identification."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

from db.config import StoreConfig
from db.models import Image, Label, Project
from db.store import open_store
from engine.cli import main
from engine.data.cache import build_cache
from engine.data.io import load_mask, load_original
from tests.conftest import shared_file


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def import_json(capsys, *argv: str) -> tuple[int, dict]:
    code, out = run_cli(capsys, "import", "--json", *argv)
    return code, json.loads(out)


@pytest.fixture
def home_store(_isolated_home: Path):
    store = open_store(StoreConfig.from_env(home=_isolated_home))
    yield store
    store.dispose()


def test_chest_train_npz_imports_dedupes_and_is_idempotent(capsys, home_store) -> None:
    source = shared_file("chest_xray_pneumonia_64/train.npz")
    code, report = import_json(capsys, "--project", "chest", "--task", "multiclass", "--source", str(source))
    assert code == 0
    assert (report["imported"], report["duplicates"], report["labels"]) == (4640, 22, 4640)
    assert all(d["duplicate_of"] > 0 for d in report["duplicate_items"])
    bundle = np.load(source)
    truth = dict(zip(bundle["names"].tolist(), bundle["labels"].tolist()))
    with home_store.sessions.begin() as s:
        project = s.scalars(select(Project)).one()
        assert project.classes == ["normal", "pneumonia"] and project.image_size == 64
        rows = s.execute(select(Image.source_name, Label.value, Image.split, Image.patient_key)
                         .join(Label, Label.id == Image.current_label_id)).all()
        assert len(rows) == 4640
        assert all(truth[name] == value for name, value, _, _ in rows)
        assert {split for _, _, split, _ in rows} == {"train"}
        raw_groups = set(bundle["groups"].tolist())
        assert all(len(key) == 64 and key not in raw_groups for _, _, _, key in rows)
        first = s.scalars(select(Image).order_by(Image.id)).first()
        stored = load_original(home_store.config.home / first.stored_path)
        assert np.array_equal(stored, bundle["images"][0])

    code, again = import_json(capsys, "--project", "chest", "--source", str(source))
    assert code == 0 and again["imported"] == 0 and again["duplicates"] == 4662


def test_unlabeled_import_stores_no_labels(capsys, home_store) -> None:
    source = shared_file("chest_xray_pneumonia_64/val.npz")
    code, report = import_json(capsys, "--project", "pool", "--task", "multiclass", "--source", str(source),
                               "--unlabeled")
    assert code == 0 and report["labels"] == 0
    assert report["imported"] + report["duplicates"] == 554 and report["imported"] > 540   # val holds 4 duplicates
    with home_store.sessions.begin() as s:
        assert s.scalar(select(func.count()).select_from(Label)) == 0
        assert set(s.scalars(select(Image.split))) == {"val"}


def _write_mixed_folder(folder: Path) -> None:
    import pydicom.data

    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        cv2.imwrite(str(folder / f"good_{i}.png"), rng.integers(0, 255, (40, 40), dtype=np.uint8))
    full = (folder / "good_0.png").read_bytes()
    (folder / "truncated.png").write_bytes(full[: len(full) // 2])
    (folder / "x.png").write_text("this is not an image\n")
    (folder / "empty.png").write_bytes(b"")
    shutil.copy(pydicom.data.get_testdata_file("CT_small.dcm"), folder / "ct_small.dcm")


def test_folder_with_bad_files_reports_each_and_imports_the_rest(capsys, home_store, tmp_path) -> None:
    folder = tmp_path / "mixed"
    _write_mixed_folder(folder)
    code, report = import_json(capsys, "--project", "mixed", "--task", "multiclass", "--classes", "a,b",
                               "--source", str(folder))
    assert code == 0
    assert report["imported"] == 3
    reasons = {r["name"]: r["reason"] for r in report["rejected_items"]}
    assert set(reasons) == {"truncated.png", "x.png", "empty.png"}
    assert all(reason for reason in reasons.values())
    assert "empty" in reasons["empty.png"] or "0 bytes" in reasons["empty.png"]
    with home_store.sessions.begin() as s:
        ct = s.scalars(select(Image).where(Image.modality == "CT")).one()
        meta_text = json.dumps(ct.meta).lower()
        for tag in ("patientname", "patientid", "patientbirthdate", "patient_name", "patient_id"):
            assert tag not in meta_text
        assert ct.stored_path.endswith(f"{ct.id}.npy") and ct.dtype == "int16"
        assert ct.meta["rescale_intercept"] == -1024.0 and ct.meta["modality"] == "CT"   # file has no window tags
    stored_names = [p.name.lower() for p in home_store.config.home.rglob("*")]
    assert not any(name.endswith(".dcm") or "ct_small" in name for name in stored_names)


def test_nothing_readable_exits_1_and_missing_source_exits_1(capsys, home_store, tmp_path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "x.png").write_text("nope")
    code, report = import_json(capsys, "--project", "bad", "--task", "multiclass", "--classes", "a,b",
                               "--source", str(folder))
    assert code == 1 and report["rejected"] == 1
    assert run_cli(capsys, "import", "--project", "bad", "--task", "multiclass", "--source",
                   str(tmp_path / "missing"))[0] == 1


def test_task_or_class_clash_exits_2_and_changes_nothing(capsys, home_store, tmp_path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((16, 16), 7, np.uint8))
    assert import_json(capsys, "--project", "p", "--task", "multiclass", "--classes", "a,b",
                       "--source", str(folder))[0] == 0
    cv2.imwrite(str(folder / "b.png"), np.full((16, 16), 9, np.uint8))
    assert main(["import", "--project", "p", "--task", "multilabel", "--source", str(folder)]) == 2
    assert main(["import", "--project", "p", "--classes", "x,y", "--source", str(folder)]) == 2
    assert main(["import", "--project", "new", "--source", str(folder)]) == 2   # no --task
    with home_store.sessions.begin() as s:
        assert s.scalar(select(func.count()).select_from(Image)) == 1
        assert s.scalars(select(Project.name)).all() == ["p"]


def test_status_json_and_label_export(capsys, home_store, tmp_path) -> None:
    source = shared_file("chest_xray_pneumonia_64/test.npz")
    import_json(capsys, "--project", "chest", "--task", "multiclass", "--source", str(source))
    code, out = run_cli(capsys, "status", "--project", "chest", "--json")
    status = json.loads(out)
    assert code == 0
    assert status["images"] == status["labeled"] == status["splits"]["test"]["images"] > 590
    assert status["unlabeled"] == 0 and set(status["jobs"]) >= {"queued", "running", "done", "failed"}
    assert status["checkpoints"] == {"count": 0, "active": None}
    out_csv = tmp_path / "labels.csv"
    assert run_cli(capsys, "export", "--project", "chest", "--what", "labels", "--out", str(out_csv))[0] == 0
    lines = out_csv.read_text().splitlines()
    assert lines[0].startswith("image_id,source_name,split,label,label_index")
    assert len(lines) == status["labeled"] + 1 and ",tester," in lines[1]
    assert main(["status", "--project", "nope"]) == 2


def test_segmentation_npz_keeps_masks_exactly_and_diagnosis_as_metadata(capsys, home_store) -> None:
    source = shared_file("ph2_dermoscopy_seg_128/val.npz")
    code, report = import_json(capsys, "--project", "ph2", "--task", "segmentation", "--source", str(source))
    assert code == 0 and report["imported"] == 20 and report["labels"] == 20
    bundle = np.load(source)
    with home_store.sessions.begin() as s:
        assert s.scalars(select(Project.classes)).one() == ["background", "lesion"]
        rows = s.execute(select(Image, Label).join(Label, Label.id == Image.current_label_id)
                         .order_by(Image.id)).all()
        for index, (image, label) in enumerate(rows):
            assert np.array_equal(load_mask(home_store.config.home / label.mask_path), bundle["masks"][index])
            assert image.meta["image_label"] in {"common nevus", "atypical nevus", "melanoma"}


def test_training_cache_is_built_once_and_extended(capsys, home_store, tmp_path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((32, 32), i * 40, np.uint8))
    import_json(capsys, "--project", "c", "--task", "multiclass", "--classes", "a,b", "--source", str(folder))
    with home_store.sessions.begin() as s:
        project_id = s.scalars(select(Project.id)).one()
    view = build_cache(home_store, project_id, size=16, channels=1)
    assert view.images.shape == (3, 16, 16) and view.images.dtype == np.uint8
    assert int(view.images[view.rows([view.ids[2]])[0]].mean()) == 80
    cv2.imwrite(str(folder / "3.png"), np.full((32, 32), 200, np.uint8))
    import_json(capsys, "--project", "c", "--source", str(folder))
    view = build_cache(home_store, project_id, size=16, channels=1)
    assert view.images.shape == (4, 16, 16) and int(view.images[-1].mean()) == 200
