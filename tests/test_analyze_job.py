"""Analysis rows for every image, acquisition ranks for the unlabeled pool, and the labeling queue."""
from __future__ import annotations

import json

import numpy as np
from sqlalchemy import func, select

from db.analysis import load_embeddings, next_to_label
from db.config import StoreConfig
from db.labels import add_label, add_skip
from db.models import Checkpoint, Image, Projection, RelationEdge, UncertaintyScore
from db.projects import get_or_create_annotator
from db.store import open_store
from engine.cli import main
from tests.test_train_job import _chest_slice, _import


def test_analysis_covers_every_image_and_ranks_the_unlabeled_pool(tmp_path, capsys, _isolated_home) -> None:
    _import(*_chest_slice(tmp_path, 240, 50))
    assert main(["train", "--project", "cx", "--method", "mean_teacher", "--epochs", "1", "--no-shadow", "--wait"]) == 0
    assert main(["analyze", "--project", "cx", "--wait"]) == 0
    capsys.readouterr()
    main(["status", "--project", "cx", "--json"])
    status = json.loads(capsys.readouterr().out)
    rows = status["checkpoints"]["active"]["rows"]
    assert rows["predictions"] == rows["uncertainty"] == rows["embeddings"] == rows["projections"] == status["images"]
    assert rows["relation_edges"] == status["images"] * 10
    store = open_store(StoreConfig.from_env(home=_isolated_home))
    with store.sessions.begin() as s:
        checkpoint_id = s.scalar(select(Checkpoint.id).where(Checkpoint.is_active.is_(True)))
        ranked = s.execute(select(UncertaintyScore.image_id, UncertaintyScore.acquisition_rank, Image.label_status,
                                  Image.split).join(Image, Image.id == UncertaintyScore.image_id)
                           .where(UncertaintyScore.acquisition_rank.is_not(None))).all()
        assert {(status_, split) for _, _, status_, split in ranked} == {("unlabeled", "train")}
        assert sorted(rank for _, rank, _, _ in ranked) == list(range(240 - 50))
        assert s.scalar(select(func.count()).select_from(RelationEdge).where(
            RelationEdge.source_image_id == RelationEdge.target_image_id)) == 0
        coords = np.array(s.execute(select(Projection.x, Projection.y)).all())
        assert np.isfinite(coords).all() and coords.std(0).min() > 0
        ids, vectors = load_embeddings(s, checkpoint_id)
        assert len(ids) == status["images"] and vectors.dtype == np.float32 and vectors.shape[1] > 8

        first = next_to_label(s, 1, None, checkpoint_id)
        best = min(ranked, key=lambda r: r[1])[0]
        assert first == best
        reader = get_or_create_annotator(s, "dr_r")
        add_skip(s, first, reader)
        s.flush()
        second = next_to_label(s, 1, reader.id, checkpoint_id)
        assert second != first and second == sorted(ranked, key=lambda r: r[1])[1][0]
        add_label(s, s.get(Image, second), reader, 1)
        assert next_to_label(s, 1, reader.id, checkpoint_id) not in (first, second)
    store.dispose()
