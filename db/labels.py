"""Append-only label history and the derived current label (CONTRACTS §4).

Label rows are never updated or deleted. After each append the image's cached `label_status` /
`current_label_id` are recomputed from history, so queue and count queries stay single indexed lookups.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from db.enums import LabelKind, LabelSource, LabelStatus
from db.models import Annotator, Image, Label, Skip

# rows that can be an image's current label; `read` rows (double reading) and model proposals never are
DECIDING_SOURCES = (LabelSource.HUMAN.value, LabelSource.IMPORT.value, LabelSource.CONSENSUS.value,
                    LabelSource.REVIEW.value)
STATUS_BY_KIND = {
    LabelKind.CLASS.value: LabelStatus.LABELED.value,
    LabelKind.UNCERTAIN.value: LabelStatus.UNCERTAIN.value,
    LabelKind.EXCLUDE.value: LabelStatus.EXCLUDED.value,
}


class LabelError(ValueError):
    """A label that does not fit the project (bad class index, nothing to undo...)."""


@dataclass(frozen=True)
class HistoryEntry:
    label_id: int
    kind: str
    value: Any
    mask_path: str | None
    source: str
    annotator: str | None
    comment: str | None
    created_at: datetime
    voided: bool


def _voided_ids(rows: list[Label]) -> set[int]:
    return {r.voids_label_id for r in rows if r.kind == LabelKind.RETRACT.value and r.voids_label_id}


def deciding_label(rows: list[Label]) -> Label | None:
    """Newest non-voided human/import row that is not a retract; rows must be ordered by id."""
    voided = _voided_ids(rows)
    for row in reversed(rows):
        if row.id in voided or row.kind == LabelKind.RETRACT.value:
            continue
        if row.source in DECIDING_SOURCES:
            return row
    return None


def image_rows(session: Session, image_id: int) -> list[Label]:
    """An image's label history, oldest first."""
    return list(session.scalars(select(Label).where(Label.image_id == image_id).order_by(Label.id)))


def refresh_current(session: Session, image_id: int, rows: list[Label] | None = None) -> Label | None:
    """Recompute the image's cached status and current label from its history (`rows`, when the caller has
    just read them)."""
    rows = image_rows(session, image_id) if rows is None else rows
    decider = deciding_label(rows)
    status = STATUS_BY_KIND[decider.kind] if decider else LabelStatus.UNLABELED.value
    current_id = decider.id if decider is not None and decider.kind == LabelKind.CLASS.value else None
    session.execute(update(Image).where(Image.id == image_id)
                    .values(label_status=status, current_label_id=current_id))
    return decider


def normalize_value(task: str, n_classes: int, value: Any) -> Any:
    """Class index for multiclass, sorted unique list for multilabel, None for masks."""
    if task == "segmentation":
        return None
    if task == "multilabel":
        indices = sorted({int(v) for v in (value if isinstance(value, (list, tuple, set)) else [value])})
        bad = [i for i in indices if not 0 <= i < n_classes]
    else:
        if isinstance(value, (list, tuple, set)):
            raise LabelError("a multiclass label is one class, not a list")
        indices = int(value)
        bad = [] if 0 <= indices < n_classes else [indices]
    if bad:
        raise LabelError(f"class index out of range 0..{n_classes - 1}: {bad}")
    return indices


def add_label(session: Session, image: Image, annotator: Annotator | None, value: Any = None, *,
              kind: str = LabelKind.CLASS.value, source: str = LabelSource.HUMAN.value,
              comment: str | None = None, mask_path: str | None = None,
              checkpoint_id: int | None = None) -> Label:
    """Append one row and refresh the image's current label. The caller owns the transaction."""
    if kind == LabelKind.CLASS.value:
        project = image.project
        value = normalize_value(project.task, len(project.classes), value)
        if project.task == "segmentation" and not mask_path:
            raise LabelError("a segmentation label needs a mask")
    else:
        value, mask_path = None, None
    row = Label(image_id=image.id, annotator_id=annotator.id if annotator else None, kind=kind, value=value,
                mask_path=mask_path, source=source, comment=comment, checkpoint_id=checkpoint_id)
    session.add(row)
    session.flush()
    if source in DECIDING_SOURCES:
        refresh_current(session, image.id)
    return row


def retract_last(session: Session, image: Image, annotator: Annotator, comment: str | None = None) -> Label:
    """Undo: void this annotator's newest earlier, still-valid row for the image."""
    rows = image_rows(session, image.id)
    voided = _voided_ids(rows)
    target = next((r for r in reversed(rows) if r.annotator_id == annotator.id and r.id not in voided
                   and r.kind != LabelKind.RETRACT.value and r.source != LabelSource.MODEL.value), None)
    if target is None:
        raise LabelError(f"nothing to undo for {annotator.name} on image {image.id}")
    row = Label(image_id=image.id, annotator_id=annotator.id, kind=LabelKind.RETRACT.value,
                voids_label_id=target.id, source=LabelSource.HUMAN.value, comment=comment)
    session.add(row)
    session.flush()
    refresh_current(session, image.id)
    return row


def add_skip(session: Session, image_id: int, annotator: Annotator) -> None:
    session.add(Skip(image_id=image_id, annotator_id=annotator.id))


def current_label(session: Session, image_id: int) -> Label | None:
    label_id = session.scalar(select(Image.current_label_id).where(Image.id == image_id))
    return session.get(Label, label_id) if label_id else None


def history(session: Session, image_id: int) -> list[HistoryEntry]:
    rows = session.execute(select(Label, Annotator.name).outerjoin(Annotator, Label.annotator_id == Annotator.id)
                           .where(Label.image_id == image_id).order_by(Label.id)).all()
    voided = _voided_ids([r for r, _ in rows])
    return [HistoryEntry(r.id, r.kind, r.value, r.mask_path, r.source, name, r.comment, r.created_at,
                         r.id in voided) for r, name in rows]


def status_counts(session: Session, project_id: int) -> dict[str, int]:
    rows = session.execute(select(Image.label_status, func.count()).where(Image.project_id == project_id)
                           .group_by(Image.label_status)).all()
    counts = {s.value: 0 for s in LabelStatus}
    counts.update({status: n for status, n in rows})
    return counts


def current_labels(session: Session, project_id: int) -> Iterable[tuple[Image, Label, str | None]]:
    """(image, deciding label, annotator name) for every labeled image, for export and training."""
    return session.execute(
        select(Image, Label, Annotator.name).join(Label, Label.id == Image.current_label_id)
        .outerjoin(Annotator, Label.annotator_id == Annotator.id)
        .where(Image.project_id == project_id).order_by(Image.id)).all()
