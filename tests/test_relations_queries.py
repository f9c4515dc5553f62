"""db/relations.py on SQLite and PostgreSQL: one case's neighbours, the edges among a few cases, and the
possible label errors computed in SQL (the Relations page no longer loads the whole graph)."""
from __future__ import annotations

from db.labels import add_label, retract_last
from db.models import Checkpoint, Image, RelationEdge
from db.projects import create_project, get_or_create_annotator
from db.relations import edges_among, label_disagreements, neighbours


def _graph(store, task: str = "multiclass") -> tuple[int, list[int]]:
    """6 images; labels a b b b - [b]; edges (source -> targets in rank order) below."""
    with store.sessions.begin() as s:
        project = create_project(s, "rel", task, ["a", "b"], 32)
        images = [Image(project_id=project.id, stored_path=f"{i}.png", sha256=f"{i:064d}", width=32, height=32,
                        channels=1, dtype="uint8", split="train", source_name=str(i), meta={}) for i in range(6)]
        s.add_all(images)
        s.flush()
        ids = [im.id for im in images]
        ckpt = Checkpoint(project_id=project.id, method="mt", path="x", config={}, metrics={}, is_active=True)
        s.add(ckpt)
        s.flush()
        user = get_or_create_annotator(s, "r")
        for image, value in zip(images, [0, 1, 1, 1, None, 1]):
            if value is not None:
                add_label(s, image, user, [value] if task == "multilabel" else value)
        graph = {0: [1, 2, 3, 4], 1: [2, 3, 0], 2: [1, 0, 3], 5: [0, 1, 4]}
        s.add_all(RelationEdge(checkpoint_id=ckpt.id, source_image_id=ids[a], target_image_id=ids[b], rank=r,
                               similarity=0.9 - 0.1 * r) for a, targets in graph.items() for r, b in enumerate(targets))
        return ckpt.id, ids


def test_neighbours_come_nearest_first_and_edges_among_stay_inside_the_set(store) -> None:
    ckpt, ids = _graph(store)
    with store.sessions.begin() as s:
        assert [t for t, _r, _s in neighbours(s, ckpt, ids[0])] == [ids[1], ids[2], ids[3], ids[4]]
        assert neighbours(s, ckpt, ids[3]) == []
        among = edges_among(s, ckpt, [ids[0], ids[1], ids[2]])
        assert sorted((a, b) for a, b, _r, _s in among) == sorted(
            [(ids[0], ids[1]), (ids[0], ids[2]), (ids[1], ids[2]), (ids[1], ids[0]), (ids[2], ids[1]),
             (ids[2], ids[0])])
        assert edges_among(s, ckpt, []) == []
        s.add_all(RelationEdge(checkpoint_id=ckpt, source_image_id=ids[0], target_image_id=t, rank=r, similarity=0.1)
                  for t, r in ((ids[2], 8), (ids[0], 9)))   # a repeated target and a self edge
        s.flush()
        assert neighbours(s, ckpt, ids[0]) == [(ids[1], 0, 0.9), (ids[2], 1, 0.8), (ids[3], 2, 0.7),
                                               (ids[4], 3, 0.6)]


def test_label_disagreements_flag_a_case_most_labeled_neighbours_contradict(store) -> None:
    ckpt, ids = _graph(store)
    with store.sessions.begin() as s:
        rows, total = label_disagreements(s, ckpt)
    # 0 ('a'): 3 labeled neighbours, all 'b' -> flagged; 1, 2 ('b'): 1 of 3 disagrees; 5: only 2 labeled
    assert (rows, total) == ([(ids[0], 3, 3)], 1)


def test_label_disagreements_follow_the_current_label_and_the_limit(store) -> None:
    ckpt, ids = _graph(store, "multilabel")
    with store.sessions.begin() as s:
        assert label_disagreements(s, ckpt)[0] == [(ids[0], 3, 3)]     # multi-label values compare as lists
        user = get_or_create_annotator(s, "r")
        retract_last(s, s.get(Image, ids[0]), user)                   # 0 is unlabeled again
        add_label(s, s.get(Image, ids[1]), user, [0])                 # 1 now says 'a' against 2, 3 ('b'), 0 (none)
        rows, total = label_disagreements(s, ckpt, min_labeled=2)
        assert (rows, total) == ([(ids[1], 2, 2)], 1)
        add_label(s, s.get(Image, ids[2]), user, [0])                 # 2: 'a' vs 1 ('a'), 3 ('b'): 1 of 2 — no
        add_label(s, s.get(Image, ids[3]), user, [0])                 # 1: 'a' vs 2 'a', 3 'a'; 5 'b' vs 0?, 1 'a'
        rows, total = label_disagreements(s, ckpt, min_labeled=1, limit=1)
        assert total == 1 and rows == [(ids[5], 1, 1)]
