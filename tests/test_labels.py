"""Label history semantics (CONTRACTS §4): append-only, newest decides, retract, uncertain, exclude."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from db.labels import LabelError, add_label, current_label, history, retract_last, status_counts
from db.models import Image, Label
from db.projects import ProjectError, create_project, get_or_create_annotator
from db.status import project_status


def _project_with_images(session, n: int = 3, task: str = "multiclass"):
    project = create_project(session, "p", task, ["normal", "pneumonia", "other"], 64)
    images = []
    for i in range(n):
        image = Image(project_id=project.id, stored_path=f"images/{i}.png", sha256=f"{i:064d}", width=64,
                      height=64, channels=1, dtype="uint8", split="train", source_name=f"{i}.png", meta={})
        session.add(image)
        images.append(image)
    session.flush()
    return project, images


def test_relabel_keeps_history_and_newest_decides(store) -> None:
    with store.sessions.begin() as s:
        _, (image, *_) = _project_with_images(s)
        reader = get_or_create_annotator(s, "dr_r")
        add_label(s, image, reader, 0)
        add_label(s, image, reader, 1, comment="looked again")
    with store.sessions.begin() as s:
        rows = s.scalars(select(Label).where(Label.image_id == image.id)).all()
        assert [r.value for r in rows] == [0, 1]
        assert current_label(s, image.id).value == 1
        assert [h.annotator for h in history(s, image.id)] == ["dr_r", "dr_r"]


def test_retract_voids_newest_row_of_that_annotator(store) -> None:
    with store.sessions.begin() as s:
        _, (image, *_) = _project_with_images(s)
        a, b = get_or_create_annotator(s, "a"), get_or_create_annotator(s, "b")
        add_label(s, image, a, 0)
        add_label(s, image, b, 1)
        add_label(s, image, a, 2)
        retract_last(s, image, a)          # voids a's "2" -> b's "1" decides
        assert current_label(s, image.id).value == 1
        retract_last(s, image, a)          # voids a's "0"; b's "1" still decides
        assert current_label(s, image.id).value == 1
        with pytest.raises(LabelError):
            retract_last(s, image, a)
        assert s.scalar(select(func.count()).select_from(Label)) == 5   # 3 labels + 2 retracts; nothing deleted
        assert sum(h.voided for h in history(s, image.id)) == 2


def test_uncertain_exclude_and_model_rows(store) -> None:
    with store.sessions.begin() as s:
        project, (img0, img1, img2) = _project_with_images(s)
        reader = get_or_create_annotator(s, "r")
        add_label(s, img0, reader, 1)
        add_label(s, img0, reader, kind="uncertain")
        add_label(s, img1, reader, kind="exclude")
        add_label(s, img2, None, 2, source="model")   # a proposal never becomes the label
        counts = status_counts(s, project.id)
        assert counts == {"unlabeled": 1, "labeled": 0, "uncertain": 1, "excluded": 1, "review": 0}
        status = project_status(s, project)
        assert (status["labeled"], status["unlabeled"], status["excluded"], status["uncertain"]) == (0, 2, 1, 1)
        assert current_label(s, img0.id) is None


def test_label_values_are_validated(store) -> None:
    with store.sessions.begin() as s:
        _, (image, *_) = _project_with_images(s)
        reader = get_or_create_annotator(s, "r")
        with pytest.raises(LabelError):
            add_label(s, image, reader, 7)
        with pytest.raises(LabelError):
            add_label(s, image, reader, [0, 1])


def test_multilabel_values_are_sorted_sets(store) -> None:
    with store.sessions.begin() as s:
        _, (image, *_) = _project_with_images(s, task="multilabel")
        add_label(s, image, get_or_create_annotator(s, "r"), [2, 0, 2])
        assert current_label(s, image.id).value == [0, 2]


@pytest.mark.parametrize("name,task,classes", [("", "multiclass", ["a", "b"]), ("q", "multiclass", []),
                                               ("q", "multiclass", ["a", "a"]), ("q", "bogus", ["a", "b"])])
def test_bad_projects_are_refused(store, name, task, classes) -> None:
    with store.sessions.begin() as s, pytest.raises(ProjectError):
        create_project(s, name, task, classes, 64)


def test_duplicate_project_name_refused(store) -> None:
    with store.sessions.begin() as s:
        create_project(s, "same", "multiclass", ["a", "b"], 64)
        with pytest.raises(ProjectError, match="already exists"):
            create_project(s, "same", "multiclass", ["a", "b"], 64)


def test_class_balance_counts_current_labels_on_every_backend(store) -> None:
    """The Projects page's class balance grouped by the JSON label value, which PostgreSQL's json type refuses
    ("could not identify an equality operator for type json"); it now counts through db.images.label_counts."""
    from app.views.projects import class_balance
    from db.labels import add_label
    from db.models import Image, Project
    from db.projects import get_or_create_annotator

    with store.sessions.begin() as s:
        project = Project(name="p", task="multilabel", classes=["a", "b", "c"], image_size=16)
        s.add(project)
        s.flush()
        reader = get_or_create_annotator(s, "dr")
        for i, value in enumerate([[0], [0, 2], [2], None]):
            image = Image(project_id=project.id, stored_path="", sha256=f"{i:064d}", width=4, height=4, channels=1,
                          dtype="uint8", split="train", source_name=str(i), meta={}, label_status="unlabeled")
            s.add(image)
            s.flush()
            if value is not None:
                add_label(s, image, reader, value)
        balance = class_balance(s, project)
    assert balance["labeled images"].to_dict() == {"a": 2, "b": 0, "c": 2}
