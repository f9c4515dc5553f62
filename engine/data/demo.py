"""The built-in demo: the real pediatric chest X-rays from ../shared/data, as a hospital would have them
(train split as an unlabeled pool, val and test labeled). Shared by `python -m engine demo` and the app."""
from __future__ import annotations

import os
from pathlib import Path

from db.store import Store
from engine.data.importer import ImportRequest, run_import
from engine.data.report import ImportReport

DEMO_SET = "chest_xray_pneumonia_64"
DEMO_PROJECT = "chest-xray-demo"
HOW_TO_IMPORT = ("python -m engine import --project my-xrays --task multiclass --classes normal,pneumonia "
                 "--source /path/to/folder-per-class")


def shared_data_dir() -> Path:
    """../shared/data beside the checkout (from the repo root, not the cwd), or $MEDSSL_SHARED_DATA."""
    repo_root = Path(__file__).resolve().parents[2]
    return Path(os.environ.get("MEDSSL_SHARED_DATA") or repo_root.parent / "shared" / "data")


def demo_folder() -> Path | None:
    folder = shared_data_dir() / DEMO_SET
    return folder if (folder / "train.npz").exists() else None


def import_demo(store: Store, project: str = DEMO_PROJECT) -> list[tuple[str, ImportReport]]:
    """Idempotent: a second call adds nothing (every image is a duplicate by content)."""
    folder = demo_folder()
    if folder is None:
        raise FileNotFoundError(f"demo data not found under {shared_data_dir()}")
    reports = []
    for split, unlabeled in (("train", True), ("val", False), ("test", False)):
        request = ImportRequest(project=project, source=folder / f"{split}.npz", task="multiclass",
                                unlabeled=unlabeled, annotator="demo")
        reports.append((split, run_import(store, request)))
    return reports
