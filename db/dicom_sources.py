"""Queries on dicom_source: what a PACS import already holds (so a re-run fetches nothing twice) and which
source instance an image points back to (for DICOM SEG / SR write-back)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from db.pacs_models import DicomSource

SOURCE_FIELDS = ("study_uid", "series_uid", "sop_uid", "sop_class_uid", "frame_number", "frames")


def known_instances(session: Session, project_id: int) -> set[str]:
    """SOP Instance UIDs of the project with every frame imported (a partial instance is fetched again)."""
    rows = session.execute(select(DicomSource.sop_uid, DicomSource.frames)
                           .where(DicomSource.project_id == project_id)).all()
    seen: dict[str, list[int]] = {}
    for sop, frames in rows:
        seen.setdefault(sop, [0, frames])[0] += 1
    return {sop for sop, (have, frames) in seen.items() if have >= frames}


def insert_sources(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(DicomSource), rows)


def sources_of(session: Session, image_ids: Iterable[int]) -> dict[int, DicomSource]:
    ids = list(image_ids)
    if not ids:
        return {}
    found: dict[int, DicomSource] = {}
    for start in range(0, len(ids), 900):  # SQLite's bound-parameter limit
        chunk = ids[start:start + 900]
        found.update({row.image_id: row for row in
                      session.scalars(select(DicomSource).where(DicomSource.image_id.in_(chunk)))})
    return found


def has_sources(session: Session, project_id: int) -> bool:
    return session.scalar(select(DicomSource.image_id).where(DicomSource.project_id == project_id).limit(1)) \
        is not None
