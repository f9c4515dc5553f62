"""Image rows: bulk insert for imports, content-hash lookups for dedupe, path resolution."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from db.enums import LabelStatus
from db.exports import label_indices
from db.models import Image, Label


def existing_hashes(session: Session, project_id: int) -> dict[str, tuple[int, Any]]:
    """sha256 -> (image id, current label value or None) for duplicate reports."""
    rows = session.execute(
        select(Image.sha256, Image.id, Label.value).outerjoin(Label, Label.id == Image.current_label_id)
        .where(Image.project_id == project_id)).all()
    return {sha: (image_id, value) for sha, image_id, value in rows}


def insert_images(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert many Image rows in one round trip; returns their ids in input order."""
    if not rows:
        return []
    result = session.execute(insert(Image).returning(Image.id, sort_by_parameter_order=True), rows)
    return [row[0] for row in result]


def set_stored_paths(session: Session, paths: dict[int, str]) -> None:
    if paths:
        session.execute(update(Image), [{"id": i, "stored_path": p} for i, p in paths.items()])


def insert_import_labels(session: Session, rows: list[dict[str, Any]]) -> None:
    """Bulk-append imported class labels and mark their images labeled (fresh images have no history)."""
    if not rows:
        return
    result = session.execute(insert(Label).returning(Label.id, Label.image_id, sort_by_parameter_order=True),
                             rows)
    session.execute(update(Image), [{"id": image_id, "current_label_id": label_id,
                                     "label_status": LabelStatus.LABELED.value}
                                    for label_id, image_id in result])


def resolve_path(home: Path, stored_path: str) -> Path:
    path = Path(stored_path)
    return path if path.is_absolute() else home / path


def label_counts(session: Session, project_id: int, n_classes: int) -> list[int]:
    """Images per class by their current label (a multi-label image counts once per class it carries)."""
    counts = [0] * n_classes
    values = session.scalars(select(Label.value).join(Image, Image.current_label_id == Label.id)
                             .where(Image.project_id == project_id))
    for value in values:
        for index in label_indices(value):
            if isinstance(index, int) and 0 <= index < n_classes:
                counts[index] += 1
    return counts
