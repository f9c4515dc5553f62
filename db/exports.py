"""Export records (labels, predictions) shared by the CLI and the app, so both write the same columns."""
from __future__ import annotations

import csv
import io
import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.labels import current_labels
from db.models import Image, Label, Prediction, Project

LABEL_FIELDS = ("image_id", "source_name", "split", "label", "label_index", "mask_path", "source", "annotator",
                "labeled_at", "comment")


def label_indices(value: Any) -> list[int]:
    """A stored label or prediction value (index, list of indices or None) as a list of indices."""
    return value if isinstance(value, list) else ([] if value is None else [value])


def label_names(classes: list[str], value: Any, sep: str = ";") -> str:
    """A stored label or prediction value as class names (exports join with ';', the app with '; ')."""
    return sep.join(classes[i] for i in label_indices(value))


def _class_names(classes: list[str], value: Any) -> tuple[str, str]:
    return label_names(classes, value), ";".join(map(str, label_indices(value)))


def label_records(session: Session, project: Project) -> list[dict[str, Any]]:
    rows = []
    for image, label, annotator in current_labels(session, project.id):
        names, indices = _class_names(project.classes, label.value)
        rows.append({"image_id": image.id, "source_name": image.source_name, "split": image.split,
                     "label": names, "label_index": indices, "mask_path": label.mask_path or "",
                     "source": label.source, "annotator": annotator or "",
                     "labeled_at": label.created_at.isoformat(), "comment": label.comment or ""})
    return rows


def label_count(session: Session, project_id: int) -> int:
    """len(label_records(...)) without building them: the images that have a current label."""
    return session.scalar(select(func.count(Image.id)).join(Label, Label.id == Image.current_label_id)
                          .where(Image.project_id == project_id)) or 0


def prediction_count(session: Session, project_id: int, checkpoint_id: int) -> int:
    """len(prediction_records(...)) without building them."""
    return session.scalar(select(func.count(Image.id)).join(Prediction, Prediction.image_id == Image.id)
                          .where(Image.project_id == project_id, Prediction.checkpoint_id == checkpoint_id)) or 0


def prediction_records(session: Session, project: Project, checkpoint_id: int) -> list[dict[str, Any]]:
    rows = session.execute(select(Image.id, Image.source_name, Image.split, Prediction.predicted, Prediction.probs)
                           .join(Prediction, Prediction.image_id == Image.id)
                           .where(Image.project_id == project.id, Prediction.checkpoint_id == checkpoint_id)
                           .order_by(Image.id)).all()
    out = []
    for image_id, name, split, predicted, probs in rows:
        names, _ = _class_names(project.classes, predicted)
        out.append({"image_id": image_id, "source_name": name, "split": split, "predicted": names,
                    **{f"p_{c}": p for c, p in zip(project.classes, probs)}, "checkpoint_id": checkpoint_id})
    return out


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets read as a formula (CSV injection)


def csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(rows: list[dict[str, Any]], fields: list[str] | tuple[str, ...] | None = None) -> str:
    """Every export's CSV: user text (names, comments, class names in headers) is neutralised by csv_cell."""
    columns = list(fields or (rows[0].keys() if rows else LABEL_FIELDS))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([csv_cell(c) for c in columns])
    for row in rows:
        writer.writerow([csv_cell(row.get(c, "")) for c in columns])
    return buffer.getvalue()


def to_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=2)


def released(session: Session, project: Project, actor: Any, what: str, rows: int) -> None:
    """Every export that leaves the app: the actor's role is checked (leads and admins) and the export
    audited with its row count, as the CLI's are. Raises db.roles.PermissionDenied."""
    from db import audit
    from db.roles import require

    require(actor, "export", project)
    audit.record(session, actor, f"export.{what}", project_id=project.id, target_kind="project",
                 target_id=project.id, after={"rows": rows})
