"""Where a PACS-imported image came from, kept so labels and masks can be written back to the PACS.

Only projects imported over DICOMweb have rows here. UIDs are not direct identifiers, but they link back to
the patient inside the hospital's PACS, so they live in their own table (never on the Label page, never in
CSV exports) and go away with the image.
"""
from __future__ import annotations

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base


class DicomSource(Base):
    __tablename__ = "dicom_source"
    __table_args__ = (
        UniqueConstraint("project_id", "sop_uid", "frame_number", name="uq_dicom_source_instance_frame"),
        Index("ix_dicom_source_series", "project_id", "series_uid"),
    )

    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    study_uid: Mapped[str] = mapped_column(String(64))
    series_uid: Mapped[str] = mapped_column(String(64))
    sop_uid: Mapped[str] = mapped_column(String(64))
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    frame_number: Mapped[int] = mapped_column(Integer, default=1)   # 1-based, as DICOM counts frames
    frames: Mapped[int] = mapped_column(Integer, default=1)         # frames of the source instance
