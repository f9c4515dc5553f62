"""Before the first model the queue serves a diverse first batch, not id order (issue 13 item 6)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import select

from db.analysis import next_to_label
from db.config import StoreConfig
from db.labels import add_skip
from db.models import Image
from db.projects import get_or_create_annotator
from db.store import open_store
from engine.cli import main
from engine.data.cold_start import kcenter_order
from tests.conftest import shared_file


def test_kcenter_order_is_farthest_first_and_deterministic() -> None:
    rng = np.random.default_rng(0)
    cluster_a, cluster_b = rng.normal(0, 0.1, (50, 8)), rng.normal(5, 0.1, (5, 8))
    features = np.vstack([cluster_a, cluster_b])
    order = kcenter_order(features, 4)
    assert len(set(order.tolist())) == 4 and (order >= 50).any()  # the small cluster is reached at once
    assert np.array_equal(order, kcenter_order(features, 4))


def _served(store, project_id: int, n: int) -> list[int]:
    served = []
    with store.sessions.begin() as s:
        reader = get_or_create_annotator(s, "dr_cold")
        for _ in range(n):
            image_id = next_to_label(s, project_id, reader.id, None)
            served.append(image_id)
            add_skip(s, image_id, reader)
    return served


def test_first_batch_without_a_model_covers_both_classes_of_a_sorted_pool(tmp_path: Path) -> None:
    bundle = np.load(shared_file("chest_xray_pneumonia_64/train.npz"))
    labels = bundle["labels"]
    normal, pneumonia = np.flatnonzero(labels == 0)[:150], np.flatnonzero(labels == 1)[:50]
    pick = np.r_[normal, pneumonia]  # id order = all NORMAL first, as the demo once served them
    np.savez(tmp_path / "train.npz", images=bundle["images"][pick], labels=np.full(len(pick), -1))
    assert main(["import", "--project", "cold", "--task", "multiclass", "--classes", "normal,pneumonia",
                 "--source", str(tmp_path / "train.npz")]) == 0
    store = open_store(StoreConfig.from_env())
    with store.sessions.begin() as s:
        ids = s.scalars(select(Image.id).order_by(Image.id)).all()
    truth = dict(zip(ids, labels[pick]))
    served = _served(store, 1, 30)
    store.dispose()
    assert len(set(served)) == 30
    assert sum(truth[i] for i in served) >= 3      # id order would have served 0 pneumonia cases in 30
    assert served != ids[:30]
