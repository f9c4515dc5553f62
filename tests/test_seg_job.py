"""Segmentation through the worker path on real PH2 dermoscopy: masks in the store -> SECL train job ->
analysis with per-image uncertainty, Dice on val, and model proposals for the unlabeled images."""
from __future__ import annotations

import json

import numpy as np
from sqlalchemy import select

from db.config import StoreConfig
from db.models import Image, Label, UncertaintyScore
from db.store import open_store
from engine.cli import main
from tests.conftest import shared_file


def test_secl_job_trains_analyzes_and_proposes_masks(tmp_path, capsys, _isolated_home) -> None:
    bundle = np.load(shared_file("ph2_dermoscopy_seg_128/train.npz"))
    (tmp_path / "labeled").mkdir()
    (tmp_path / "pool").mkdir()
    np.savez(tmp_path / "labeled" / "train.npz", images=bundle["images"][:12], masks=bundle["masks"][:12],
             labels=bundle["labels"][:12])
    np.savez(tmp_path / "pool" / "train.npz", images=bundle["images"][12:48], labels=bundle["labels"][12:48])
    for source in (tmp_path / "labeled" / "train.npz", tmp_path / "pool" / "train.npz",
                   shared_file("ph2_dermoscopy_seg_128/val.npz")):
        assert main(["import", "--project", "ph2", "--task", "segmentation", "--image-size", "64",
                     "--source", str(source)]) == 0
    # wrong task: refused before a job is queued (issue 12: was exit 1 after a queued job failed)
    assert main(["train", "--project", "ph2", "--method", "supervised", "--wait"]) == 2
    assert main(["train", "--project", "ph2", "--epochs", "2", "--wait"]) == 0             # default: secl
    assert main(["analyze", "--project", "ph2", "--wait"]) == 0
    capsys.readouterr()
    main(["status", "--project", "ph2", "--json"])
    status = json.loads(capsys.readouterr().out)
    active = status["checkpoints"]["active"]
    # issue 16 §4: SECL or its supervised shadow, whichever scored better on val, is active (and analyzed)
    assert active["method"] in ("secl", "seg_supervised") and active["labels_used"] == 12 + 20
    assert active["shadow"]["metric"] == "dice" and status["checkpoints"]["count"] == 2
    assert active["rows"]["uncertainty"] == status["images"] == 68
    store = open_store(StoreConfig.from_env(home=_isolated_home))
    with store.sessions.begin() as s:
        proposals = s.execute(select(Label.image_id, Label.mask_path).where(Label.source == "model")).all()
        unlabeled = set(s.scalars(select(Image.id).where(Image.label_status == "unlabeled")))
        assert {i for i, _ in proposals} == unlabeled and len(unlabeled) == 36
        assert all(path for _, path in proposals)
        scores = s.execute(select(UncertaintyScore.entropy, UncertaintyScore.disagreement)).all()
        assert all(e is not None and 0 <= e <= 1 for e, _ in scores)
        assert all(d is not None for _, d in scores)                      # SECL has a teacher
        from db.models import Checkpoint

        evaluation = s.scalars(select(Checkpoint.metrics).where(Checkpoint.is_active.is_(True))).one()["evaluation"]
        assert 0.3 < evaluation["val"]["metrics"]["dice"] <= 1.0          # far above all-background (0)
        worst = evaluation["val"]["worst"]
        assert 1 <= len(worst) <= 6 and [w["dice"] for w in worst] == sorted(w["dice"] for w in worst)
        assert len(evaluation["val"]["per_image"]["dice"]) == evaluation["val"]["n"]
    store.dispose()
    # issue 13 item 3: Models & metrics crashed for every segmentation project (KeyError: 'roc')
    from tests.test_views import _page_app

    at = _page_app("app.views.models").run()
    assert not at.exception
    assert {m.label for m in at.metric} >= {"DICE", "Jaccard", "HD95", "ASD"}
    assert at.get("plotly_chart") and any("Worst cases" in s.value for s in at.subheader)
    assert len(at.get("image")[0].proto.imgs) == len(worst)
