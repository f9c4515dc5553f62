"""Auto-retrain: N new human labels since the active checkpoint enqueue exactly one train job."""
from __future__ import annotations

from sqlalchemy import select

from db.labels import add_label
from db.models import Image, Job
from db.projects import create_project, get_or_create_annotator
from db.retrain import SETTING, maybe_enqueue_retrain


def test_retrain_after_n_new_labels_once(store) -> None:
    with store.sessions.begin() as s:
        project = create_project(s, "r", "multiclass", ["a", "b"], 32)
        images = [Image(project_id=project.id, stored_path=f"{i}.png", sha256=f"{i:064d}", width=32, height=32,
                        channels=1, dtype="uint8", split="train", source_name=f"{i}", meta={}) for i in range(5)]
        s.add_all(images)
        s.flush()
        reader = get_or_create_annotator(s, "r")
        for image in images[:2]:
            add_label(s, image, reader, 0)
        assert maybe_enqueue_retrain(s) == []             # setting off
        project.settings = {SETTING: 3}
        s.flush()
        assert maybe_enqueue_retrain(s) == []             # only 2 new labels
        add_label(s, images[2], reader, 1)
        first = maybe_enqueue_retrain(s)
        assert len(first) == 1
        add_label(s, images[3], reader, 1)
        assert maybe_enqueue_retrain(s) == []             # a train job is already queued
        assert s.scalars(select(Job.params)).one()["trigger"].startswith("auto")
