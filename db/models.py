"""Typed tables. Label rows are append-only history; Image caches the derived current label for fast queues.

Every row that records a human or machine decision carries provenance (annotator / checkpoint / job and
a timestamp) so that multi-annotator review and audit can be added without a schema rewrite.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.base import Base, as_utc, utcnow  # noqa: F401 (re-exported: the rest of db/ imports them from here)
from db.enums import LabelStatus


class Project(Base):
    __tablename__ = "project"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    task: Mapped[str] = mapped_column(String(20))
    classes: Mapped[list[Any]] = mapped_column(JSON)          # ordered class names (mask classes for seg)
    image_size: Mapped[int] = mapped_column(Integer)          # training cache size, fixed at creation
    channels: Mapped[int] = mapped_column(Integer, default=1)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The checkpoint whose acquisition ranks Image.queue_rank holds (db/queue_rank.py); None while they are
    # being rewritten or stale, and the queue then reads the ranks from the analysis rows instead.
    queue_checkpoint_id: Mapped[int | None] = mapped_column(Integer)

    images: Mapped[list[Image]] = relationship(back_populates="project", cascade="all, delete-orphan")


class Annotator(Base):
    """A user account (the table keeps its first name: every label row already points at it).

    `password_hash` is an argon2 hash, or None for an account the CLI acts for that cannot log into the app.
    """

    __tablename__ = "annotator"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20), default="annotator")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_hash: Mapped[str | None] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column()
    last_login_at: Mapped[datetime | None] = mapped_column()
    password_changed_at: Mapped[datetime | None] = mapped_column()


# Cases waiting for a label, as the literal SQL of ix_image_queue's predicate (db.analysis.QUEUE_STATUSES, spelled
# from the same enum): the queue's query repeats it verbatim so the planner can match the partial index.
QUEUE_INDEX_WHERE = text(f"split = 'train' AND label_status IN ('{LabelStatus.UNLABELED.value}', "
                         f"'{LabelStatus.UNCERTAIN.value}')")


class Image(Base):
    __tablename__ = "image"
    __table_args__ = (
        UniqueConstraint("project_id", "sha256", name="uq_image_project_sha256"),
        Index("ix_image_project_status", "project_id", "label_status", "id"),
        Index("ix_image_project_split", "project_id", "split"),
        # The labeling queue: only cases still waiting for a label are in it, so a case labeled since the last
        # analysis drops out of the queue's walk instead of being stepped over on every "next case".
        Index("ix_image_queue", "project_id", "queue_rank", "id", sqlite_where=QUEUE_INDEX_WHERE,
              postgresql_where=QUEUE_INDEX_WHERE),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    stored_path: Mapped[str] = mapped_column(Text)            # relative to MEDSSL_HOME, or absolute if referenced
    is_reference: Mapped[bool] = mapped_column(Boolean, default=False)
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer)
    dtype: Mapped[str] = mapped_column(String(16))
    modality: Mapped[str | None] = mapped_column(String(16))
    split: Mapped[str] = mapped_column(String(8), default="train")
    source_name: Mapped[str] = mapped_column(Text)            # name in the import source, for reports
    patient_key: Mapped[str | None] = mapped_column(String(64), index=True)  # HMAC, never the raw id
    window_center: Mapped[float | None] = mapped_column(Float)
    window_width: Mapped[float | None] = mapped_column(Float)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    label_status: Mapped[str] = mapped_column(String(12), default="unlabeled")
    # Derived from Label history (no FK: Image and Label would reference each other).
    current_label_id: Mapped[int | None] = mapped_column(Integer)
    queue_rank: Mapped[int | None] = mapped_column(Integer)  # acquisition rank under Project.queue_checkpoint_id
    imported_by: Mapped[int | None] = mapped_column(ForeignKey("annotator.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    project: Mapped[Project] = relationship(back_populates="images")


class Label(Base):
    __tablename__ = "label"
    __table_args__ = (Index("ix_label_image_created", "image_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"))
    annotator_id: Mapped[int | None] = mapped_column(ForeignKey("annotator.id"))
    kind: Mapped[str] = mapped_column(String(12), default="class")
    value: Mapped[Any] = mapped_column(JSON, nullable=True)   # class index | sorted list of indices | None
    mask_path: Mapped[str | None] = mapped_column(Text)       # relative to MEDSSL_HOME, one file per version
    source: Mapped[str] = mapped_column(String(8), default="human")
    comment: Mapped[str | None] = mapped_column(Text)
    voids_label_id: Mapped[int | None] = mapped_column(ForeignKey("label.id"))  # set on retract rows
    checkpoint_id: Mapped[int | None] = mapped_column(ForeignKey("checkpoint.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Skip(Base):
    """Not a label: moves an image to the back of one annotator's queue."""

    __tablename__ = "skip"

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"), index=True)
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotator.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Worker(Base):
    __tablename__ = "worker"

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    device: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column()


class Job(Base):
    __tablename__ = "job"
    __table_args__ = (Index("ix_job_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(12), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)   # live curves for the UI
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    error: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("worker.id", ondelete="SET NULL"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("annotator.id"))
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class Checkpoint(Base):
    __tablename__ = "checkpoint"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"))
    method: Mapped[str] = mapped_column(String(32))
    backbone: Mapped[str | None] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)                   # relative to MEDSSL_HOME
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    labels_used: Mapped[int] = mapped_column(Integer, default=0)
    label_hash: Mapped[str | None] = mapped_column(String(64))  # pins the exact label snapshot
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Prediction(Base):
    __tablename__ = "prediction"
    __table_args__ = (UniqueConstraint("checkpoint_id", "image_id", name="uq_prediction_ckpt_image"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("checkpoint.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"), index=True)
    predicted: Mapped[Any] = mapped_column(JSON, nullable=True)    # class index or list of indices
    probs: Mapped[list[Any]] = mapped_column(JSON)                  # teacher (or only model) probabilities
    student_probs: Mapped[list[Any] | None] = mapped_column(JSON)


class UncertaintyScore(Base):
    __tablename__ = "uncertainty"
    __table_args__ = (
        UniqueConstraint("checkpoint_id", "image_id", name="uq_uncertainty_ckpt_image"),
        Index("ix_uncertainty_ckpt_rank", "checkpoint_id", "acquisition_rank"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("checkpoint.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"), index=True)
    entropy: Mapped[float | None] = mapped_column(Float)
    margin: Mapped[float | None] = mapped_column(Float)
    least_confidence: Mapped[float | None] = mapped_column(Float)
    disagreement: Mapped[float | None] = mapped_column(Float)
    mc_variance: Mapped[float | None] = mapped_column(Float)
    acquisition_rank: Mapped[int | None] = mapped_column(Integer)  # 0 = label first, per default strategy


class Embedding(Base):
    __tablename__ = "embedding"
    __table_args__ = (UniqueConstraint("checkpoint_id", "image_id", name="uq_embedding_ckpt_image"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("checkpoint.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"), index=True)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)         # float32 little-endian


class Projection(Base):
    __tablename__ = "projection"
    __table_args__ = (UniqueConstraint("checkpoint_id", "image_id", name="uq_projection_ckpt_image"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("checkpoint.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"), index=True)
    method: Mapped[str] = mapped_column(String(8), default="umap")
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)


class RelationEdge(Base):
    __tablename__ = "relation_edge"
    __table_args__ = (Index("ix_relation_ckpt_source", "checkpoint_id", "source_image_id", "rank"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("checkpoint.id", ondelete="CASCADE"))
    source_image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"))
    target_image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"))
    rank: Mapped[int] = mapped_column(Integer)
    similarity: Mapped[float] = mapped_column(Float)


class Setting(Base):
    """Install-wide key/value settings (e.g. the patient-key HMAC secret shared by every install)."""

    __tablename__ = "setting"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)



# Accounts' companions (reader slots, login sessions, the audit log) live in db/access_models.py; imported here
# so Base.metadata always holds every table and `from db.models import CaseLease` keeps working.
from db.access_models import AuditEvent, CaseLease, LoginSession  # noqa: F401
from db.pacs_models import DicomSource  # noqa: F401
