"""next_to_label: rank order, unranked after ranked, this annotator's skips last, labeled/excluded never."""
from __future__ import annotations

from db.analysis import next_to_label
from db.labels import add_label, add_skip
from db.models import Checkpoint, Image, UncertaintyScore
from db.projects import create_project, get_or_create_annotator


def test_queue_order(store) -> None:
    with store.sessions.begin() as s:
        project = create_project(s, "q", "multiclass", ["a", "b"], 32)
        images = [Image(project_id=project.id, stored_path=f"{i}.png", sha256=f"{i:064d}", width=32, height=32,
                        channels=1, dtype="uint8", split="test" if i == 5 else "train", source_name=str(i),
                        meta={}) for i in range(6)]
        s.add_all(images)
        s.flush()
        ckpt = Checkpoint(project_id=project.id, method="mt", path="x", config={}, metrics={}, is_active=True)
        s.add(ckpt)
        s.flush()
        ids = [im.id for im in images]
        # ranks: image 2 first, then 0, then 4; images 1 and 3 unranked; image 5 is test split
        for image_id, rank in ((ids[2], 0), (ids[0], 1), (ids[4], 2), (ids[5], 3)):
            s.add(UncertaintyScore(checkpoint_id=ckpt.id, image_id=image_id, acquisition_rank=rank))
        a, b = get_or_create_annotator(s, "a"), get_or_create_annotator(s, "b")
        s.flush()
        assert next_to_label(s, project.id, a.id, ckpt.id) == ids[2]
        add_skip(s, ids[2], a)
        s.flush()
        assert next_to_label(s, project.id, a.id, ckpt.id) == ids[0]
        assert next_to_label(s, project.id, b.id, ckpt.id) == ids[2]        # b's queue is unchanged
        add_label(s, images[0], a, 1)
        add_label(s, images[4], a, kind="exclude")
        assert next_to_label(s, project.id, a.id, ckpt.id) == ids[1]        # unranked next, by id
        add_label(s, images[1], a, 0)
        add_label(s, images[3], a, kind="uncertain")                          # uncertain stays in the queue
        assert next_to_label(s, project.id, a.id, ckpt.id) == ids[3]
        add_label(s, images[3], a, 0)
        assert next_to_label(s, project.id, a.id, ckpt.id) == ids[2]        # only the skipped one is left
        assert next_to_label(s, project.id, None, None) == ids[2]
        add_label(s, images[2], b, 1)
        assert next_to_label(s, project.id, a.id, ckpt.id) is None
