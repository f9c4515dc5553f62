"""Issue 14 item 6: two analyses of one checkpoint at once both succeed, on SQLite and PostgreSQL."""
from __future__ import annotations

import threading

import numpy as np
from sqlalchemy import func, select

from db.analysis import AnalysisRows, replace_analysis
from db.models import Image, Prediction, Project
from db.results import add_checkpoint


def _rows(ids: list[int], shift: float) -> AnalysisRows:
    n = len(ids)
    probs = np.tile([0.3 + shift, 0.7 - shift], (n, 1))
    return AnalysisRows(image_ids=np.array(ids), predicted=[1] * n, probs=probs, student_probs=None,
                        scores={"entropy": np.zeros(n)}, acquisition_rank={}, embeddings=np.zeros((n, 4), np.float32),
                        coords=np.zeros((n, 2)), projection_method="pca",
                        knn_indices=np.full((n, 1), -1), knn_sims=np.zeros((n, 1)))


def test_two_analyses_of_one_checkpoint_at_once_both_succeed(store) -> None:
    with store.sessions.begin() as session:
        project = Project(name="p", task="multiclass", classes=["a", "b"], image_size=32)
        session.add(project)
        session.flush()
        images = [Image(project_id=project.id, stored_path=f"x{i}", sha256=f"{i:064d}", width=8, height=8,
                        channels=1, dtype="uint8", split="train", label_status="unlabeled", source_name=f"x{i}")
                  for i in range(20)]
        session.add_all(images)
        session.flush()
        ids = [i.id for i in images]
        checkpoint_id = add_checkpoint(session, project.id, None, "src_mt", "compact_cnn", "c.pt", {}, {}, 0, "h").id
    first = store.sessions()
    first.begin()
    replace_analysis(first, checkpoint_id, _rows(ids, 0.0))          # holds the checkpoint, not yet committed
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with store.sessions.begin() as session:
                replace_analysis(session, checkpoint_id, _rows(ids, 0.1))
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(1.0)                                                  # it waits for the first one's lock
    first.commit()
    first.close()
    thread.join(30)
    assert not thread.is_alive() and errors == []
    with store.sessions.begin() as session:
        assert session.scalar(select(func.count()).select_from(Prediction)) == 20
        assert {round(p[0], 3) for p in session.scalars(select(Prediction.probs))} == {0.4}   # the later one won


def test_app_exports_are_role_checked_and_audited(store) -> None:
    """The Export page's downloads go through db.exports.released: an annotator is refused, a lead audited."""
    import pytest

    from db.exports import released
    from db.models import AuditEvent
    from db.roles import PermissionDenied
    from db.users import ensure_user

    with store.sessions.begin() as session:
        project = Project(name="p", task="multiclass", classes=["a", "b"], image_size=32)
        session.add(project)
        session.flush()
        annotator, lead = ensure_user(session, "ann", "annotator"), ensure_user(session, "lead", "lead")
        with pytest.raises(PermissionDenied):
            released(session, project, annotator, "labels", 3)
        released(session, project, lead, "labels", 3)
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "export.labels")).all()
    assert [(e.user_id, e.after) for e in events] == [(lead.id, {"rows": 3})]
