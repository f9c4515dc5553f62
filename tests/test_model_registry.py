"""Checkpoint registry: one active per project, rollback, flipped predictions (rows written directly)."""
from __future__ import annotations

import json

from db.models import Image, Prediction
from db.projects import create_project
from db.results import add_checkpoint, flipped_predictions, list_checkpoints
from engine.cli import main


def _two_checkpoints(store) -> tuple[int, int]:
    with store.sessions.begin() as s:
        project = create_project(s, "reg", "multiclass", ["a", "b"], 32)
        images = [Image(project_id=project.id, stored_path=f"{i}.png", sha256=f"{i:064d}", width=32, height=32,
                        channels=1, dtype="uint8", split="train", source_name=f"{i}", meta={}) for i in range(4)]
        s.add_all(images)
        s.flush()
        metrics = {"val": {"teacher": {"auc": 0.80}}, "role": "teacher"}
        first = add_checkpoint(s, project.id, None, "src_mt", "compact_cnn", "a.pt", {}, metrics, 10, "h1")
        second = add_checkpoint(s, project.id, None, "src_mt", "compact_cnn", "b.pt", {},
                                {"val": {"teacher": {"auc": 0.85}}, "role": "teacher"}, 20, "h2")
        for checkpoint, preds in ((first, [0, 0, 1, 1]), (second, [0, 1, 1, 0])):
            s.add_all([Prediction(checkpoint_id=checkpoint.id, image_id=img.id, predicted=p, probs=[0.5, 0.5])
                       for img, p in zip(images, preds)])
        return first.id, second.id


def test_registry_rollback_and_flips(store, capsys) -> None:
    first, second = _two_checkpoints(store)
    with store.sessions.begin() as s:
        assert [c.is_active for c in list_checkpoints(s, 1)] == [False, True]
        assert [(p, q) for _, p, q in flipped_predictions(s, first, second)] == [(0, 1), (1, 0)]
    db = ["--db", store.config.db_url]
    capsys.readouterr()
    assert main(["compare", "--project", "reg", str(first), str(second), "--json", *db]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["flipped"] == 2 and abs(report["deltas"]["val_auc"] - 0.05) < 1e-9
    assert report["deltas"]["labels_used"] == 10
    assert main(["rollback", "--project", "reg", "--checkpoint", str(first), *db]) == 0
    capsys.readouterr()
    assert main(["models", "--project", "reg", "--json", *db]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(c["id"], c["active"], c["label_hash"]) for c in listed] == [(first, True, "h1"), (second, False, "h2")]
    assert main(["rollback", "--project", "reg", "--checkpoint", "999", *db]) == 2
