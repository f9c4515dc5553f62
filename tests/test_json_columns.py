"""JSON columns never hold NaN/±inf (CONTRACTS §9): one encoder maps them to null on SQLite and PostgreSQL."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from sqlalchemy import select

from db.json_columns import dumps, finite
from db.models import Job, Project
from engine.cli import main
from tests.conftest import shared_file


def test_finite_maps_every_non_finite_float_to_none() -> None:
    raw = {"auc": float("nan"), "nested": [1.0, float("inf"), {"x": -float("inf")}], "ok": 0.5,
           "np": np.float32("nan"), "arr": np.array([1.0, np.nan]), "t": (np.int64(3), "s"), 7: None}
    assert finite(raw) == {"auc": None, "nested": [1.0, None, {"x": None}], "ok": 0.5, "np": None,
                           "arr": [1.0, None], "t": [3, "s"], "7": None}
    text = dumps(raw)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["ok"] == 0.5


def test_json_columns_store_null_for_nan_on_every_backend(store) -> None:
    with store.sessions.begin() as s:
        project = Project(name="p", task="multiclass", classes=["a", "b"], image_size=64)
        s.add(project)
        s.flush()
        s.add(Job(project_id=project.id, kind="train", params={"lr": float("inf")},
                  metrics={"val_auc": [float("nan"), 0.9]}))
    with store.sessions.begin() as s:
        job = s.scalars(select(Job)).one()
        assert job.params == {"lr": None} and job.metrics == {"val_auc": [None, 0.9]}


def _single_class_val(tmp_path: Path) -> tuple[Path, Path]:
    bundle = np.load(shared_file("chest_xray_pneumonia_64/train.npz"))
    labels = bundle["labels"].astype(np.int64)
    rng = np.random.default_rng(0)
    pick = np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), 20, replace=False) for c in (0, 1)]))
    normals = np.flatnonzero(labels == 0)
    val_pick = rng.choice(np.setdiff1d(normals, pick), 12, replace=False)
    train, val = tmp_path / "train.npz", tmp_path / "val.npz"
    np.savez(train, images=bundle["images"][pick], labels=labels[pick])
    np.savez(val, images=bundle["images"][val_pick], labels=labels[val_pick])  # one class only: AUC undefined
    return train, val


def test_training_with_single_class_val_split_registers_its_checkpoint(tmp_path: Path, db_url: str, capsys) -> None:
    """The failure seen on PostgreSQL: an undefined val AUC (NaN) went into a JSON column after training."""
    train, val = _single_class_val(tmp_path)
    db = ["--db", db_url]
    assert main(["import", "--project", "cx", "--task", "multiclass", "--classes", "normal,pneumonia",
                 "--source", str(train), *db]) == 0
    assert main(["import", "--project", "cx", "--source", str(val), *db]) == 0
    capsys.readouterr()
    assert main(["train", "--project", "cx", "--method", "supervised", "--epochs", "1", "--wait", *db]) == 0
    capsys.readouterr()
    assert main(["status", "--project", "cx", "--json", *db]) == 0
    status = json.loads(capsys.readouterr().out)
    active = status["checkpoints"]["active"]
    assert status["checkpoints"]["count"] == 1 and active is not None
    val_metrics = active["metrics"]["val"][active["metrics"]["role"]]
    assert val_metrics["auc"] is None  # undefined, stored as null
    assert all(not (isinstance(v, float) and math.isnan(v)) for v in val_metrics.values())
