"""The one import pipeline (CLI and app share it): walk a source, dedupe by content, store, report.

Torch-free. Images are written and committed in batches, so an interrupted import keeps every finished
batch and a re-run skips them as duplicates; a bad file is reported and skipped, never fatal.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from db.dicom_sources import insert_sources
from db.engine import refresh_statistics
from db.enums import LabelSource, Task
from db.images import existing_hashes, insert_images, insert_import_labels, set_stored_paths
from db.models import Project
from db.patient_secret import patient_key_secret
from db.projects import (
    ProjectError,
    create_project,
    get_or_create_annotator,
    get_project,
    touch_project,
    validate_classes,
)
from db.settings import patient_key
from db.store import Store
from engine.data.cold_start import META_KEY, refresh_cold_start, thumbnail
from engine.data.import_audit import ImportRefused, audit_import, check_actor
from engine.data.import_labels import LabelMapper, no_label_warning, rare_class_warnings
from engine.data.io import content_hash, save_mask, save_original, to_uint8
from engine.data.report import Duplicate, ImportReport
from engine.data.roots import OutsideRootsError, check_inside
from engine.data.source_types import SourceInfo
from engine.data.sources import Rejected, SourceError, SourceItem, inspect_source, iter_source

log = logging.getLogger(__name__)
BATCH_SIZE = 1000
STATISTICS_AFTER = 1000  # images: a bulk import refreshes PostgreSQL's planner statistics
DEFAULT_IMAGE_SIZE = 128
DEFAULT_SEG_CLASSES = ["background", "lesion"]


class ImportUsageError(ValueError):
    """Exit status 2: the request itself is wrong (task/classes clash, missing task); nothing changed."""


class SourceMissingError(FileNotFoundError):
    """Exit status 1: the source does not exist."""


@dataclass(frozen=True)
class ImportRequest:
    project: str
    source: Path | None  # None: the items come from elsewhere (a DICOMweb server, engine/data/pacs)
    task: str | None = None
    classes: list[str] | None = None
    split: str | None = None
    labels_csv: Path | None = None
    unlabeled: bool = False
    image_size: int | None = None
    reference: bool = False
    annotator: str = "import"
    actor_id: int | None = None            # the account importing (role checked, audited); None: trusted caller
    roots: tuple[Path, ...] | None = None  # None: any readable path (CLI); else the source must lie inside one


def _max_label(source: Path) -> int | None:
    """For class_0..K-1 naming when nothing names the classes: peek at an npz's labels."""
    if source is not None and source.suffix == ".npz":
        with np.load(source, allow_pickle=False) as bundle:
            if "labels" in bundle.files and bundle["labels"].size:
                return int(bundle["labels"].max())
    return None


def _classes(task: str, classes: list[str]) -> list[str]:
    try:
        return validate_classes(task, list(classes))
    except ProjectError as error:
        raise ImportUsageError(str(error)) from error


def _resolve_project(session, request: ImportRequest, info, warnings: list[str]) -> tuple[Project, bool]:
    project = get_project(session, request.project)
    if project is not None:
        if request.task and request.task != project.task:
            raise ImportUsageError(f"project {project.name!r} is a {project.task} project, not {request.task}")
        if request.classes and _classes(project.task, request.classes) != list(project.classes):
            raise ImportUsageError(f"project {project.name!r} has classes {project.classes}, "
                                   f"not {request.classes}")
        if (info.class_names and project.task != Task.SEGMENTATION and not request.classes
                and list(info.class_names) != list(project.classes)):
            raise ImportUsageError(f"source classes {info.class_names} differ from project classes "
                                   f"{project.classes}")
        return project, False
    if not request.task:
        raise ImportUsageError(f"project {request.project!r} does not exist; give --task to create it")
    if request.classes:
        classes = list(request.classes)
    elif request.task == Task.SEGMENTATION:
        classes = list(DEFAULT_SEG_CLASSES)
    elif info.class_names:
        classes = list(info.class_names)
    else:
        top = _max_label(request.source)
        classes = [f"class_{i}" for i in range((top or 1) + 1)]
        warnings.append(f"no class names given or found; using {classes}")
    size = request.image_size or info.image_size or DEFAULT_IMAGE_SIZE
    try:
        return create_project(session, request.project, request.task, classes, size), True
    except ProjectError as error:
        raise ImportUsageError(str(error)) from error


@dataclass
class _Pending:
    row: dict[str, Any]
    item: SourceItem
    value: Any


class _BatchWriter:
    """Collects accepted items and writes one batch per transaction (rows, files, labels)."""

    def __init__(self, store: Store, project: Project, request: ImportRequest, report: ImportReport):
        self.store, self.project, self.request, self.report = store, project, request, report
        self.pending: list[_Pending] = []

    def add(self, pending: _Pending) -> None:
        self.pending.append(pending)
        if len(self.pending) >= BATCH_SIZE:
            self.flush()

    def _store_pixels(self, image_id: int, pending: _Pending) -> str:
        item = pending.item
        if self.request.reference and item.path is not None and pending.row["meta"].get("format") in {"png", "jpeg"}:
            return str(Path(item.path).resolve())
        stem = self.store.config.images_dir / f"p{self.project.id}" / str(image_id)
        return save_original(item.image.pixels, stem).relative_to(self.store.config.home).as_posix()

    def _store_mask(self, image_id: int, mask: np.ndarray) -> str:
        stem = self.store.config.masks_dir / f"p{self.project.id}" / f"{image_id}-import"
        return save_mask(mask, stem).relative_to(self.store.config.home).as_posix()

    def flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        with self.store.sessions.begin() as session:
            annotator = get_or_create_annotator(session, self.request.annotator)
            for p in batch:
                p.row["imported_by"] = annotator.id
            ids = insert_images(session, [p.row for p in batch])
            set_stored_paths(session, {i: self._store_pixels(i, p) for i, p in zip(ids, batch)})
            label_rows = []
            for image_id, p in zip(ids, batch):
                mask_path = self._store_mask(image_id, p.item.mask) if p.value == "mask" else None
                if p.value is not None:
                    label_rows.append({"image_id": image_id, "annotator_id": annotator.id, "kind": "class",
                                       "value": None if mask_path else p.value, "mask_path": mask_path,
                                       "source": LabelSource.IMPORT.value})
            insert_import_labels(session, label_rows)
            insert_sources(session, [dict(p.item.dicom_ref, image_id=i, project_id=self.project.id)
                                     for i, p in zip(ids, batch) if p.item.dicom_ref])
        self.report.imported += len(batch)
        self.report.labels += len(label_rows)


def _accept(item: SourceItem, project: Project, mapper: LabelMapper, request: ImportRequest,
            split: str, secret: bytes) -> _Pending:
    """Build the Image row and stored label value for one item; raises ValueError with a reason."""
    image = item.image
    pixels = image.pixels
    meta = dict(image.metadata)
    value: Any = None
    if project.task == Task.SEGMENTATION:
        label_name = mapper.image_label_name(item.label)
        if label_name is not None:
            meta["image_label"] = label_name
        if item.mask is not None and not request.unlabeled:
            top = int(item.mask.max()) if item.mask.size else 0
            if top >= len(project.classes):
                raise ValueError(f"mask has class value {top}, but the project has {len(project.classes)} "
                                 f"mask classes ({', '.join(project.classes)})")
            value = "mask"
    elif not request.unlabeled:
        value = mapper.value(item.label)
    window = image.window
    if split == "train":  # a label-free fixed embedding for the cold-start queue (engine/data/cold_start.py)
        meta[META_KEY] = thumbnail(to_uint8(pixels, window))
    row = {"project_id": project.id, "stored_path": "", "is_reference": False,
           "sha256": content_hash(pixels), "width": int(pixels.shape[1]), "height": int(pixels.shape[0]),
           "channels": 1 if pixels.ndim == 2 else int(pixels.shape[2]), "dtype": str(pixels.dtype),
           "modality": image.modality, "split": split,
           "source_name": "" if image.from_dicom else item.name,  # CONTRACTS §3: no DICOM file names
           "patient_key": patient_key(secret, item.group or image.patient_id),
           "window_center": window[0] if window else None, "window_width": window[1] if window else None,
           "meta": meta, "label_status": "unlabeled"}
    if request.reference and item.path is not None and meta.get("format") in {"png", "jpeg"}:
        row["is_reference"] = True
    return _Pending(row=row, item=item, value=value)


def run_import(store: Store, request: ImportRequest,
               on_progress: Callable[[int, int | None], None] | None = None) -> ImportReport:
    """Import `request.source` into `request.project`; see CONTRACTS §3 for every rule applied here."""
    source = Path(request.source).expanduser()
    if request.roots is not None:  # before any look at the path: a refusal must not tell what exists
        try:
            source = check_inside(source, request.roots)
        except OutsideRootsError as error:
            raise ImportUsageError(str(error)) from error
    if not source.exists():
        raise SourceMissingError(f"source not found: {source}")
    try:
        info = inspect_source(source, request.labels_csv)
    except SourceError as error:
        raise ImportUsageError(str(error)) from error
    return ingest(store, request, info, iter_source(source, request.labels_csv), on_progress)


def ingest(store: Store, request: ImportRequest, info: SourceInfo, items: Iterable[SourceItem | Rejected],
           on_progress: Callable[[int, int | None], None] | None = None) -> ImportReport:
    """Dedupe, store and report a stream of decoded items (a walked folder or a PACS query); batches commit as
    they fill, so an interrupted stream keeps what was stored and a re-run skips it."""
    warnings: list[str] = []
    with store.sessions.begin() as session:
        try:
            check_actor(session, request.actor_id)
        except ImportRefused as error:
            raise ImportUsageError(str(error)) from None
        project, created = _resolve_project(session, request, info, warnings)
        touch_project(session, project)
        secret = patient_key_secret(session, store.config.home)
        known = existing_hashes(session, project.id)
    report = ImportReport(project=project.name, project_id=project.id, created_project=created,
                          warnings=warnings, skipped=list(info.skipped))
    mapper = LabelMapper(project, info.class_names)
    split = request.split or info.split or "train"
    writer = _BatchWriter(store, project, request, report)
    seen = 0
    unresolved: list[tuple[Duplicate, str]] = []
    for item in items:
        seen += 1
        if on_progress:
            on_progress(seen, info.total)
        if isinstance(item, Rejected):
            report.rejected.append(item)
            continue
        try:
            pending = _accept(item, project, mapper, request, split, secret)
        except ValueError as error:
            report.rejected.append(Rejected(item.name, str(error)))
            continue
        sha = pending.row["sha256"]
        if sha in known:
            dup_id, dup_value = known[sha]
            differs = pending.value not in (None, "mask") and dup_value is not None and pending.value != dup_value
            report.duplicates.append(Duplicate(item.name, dup_id, differs))
            if dup_id == -1:
                unresolved.append((report.duplicates[-1], sha))
            continue
        known[sha] = (-1, pending.value if pending.value != "mask" else None)
        writer.add(pending)
    writer.flush()
    _resolve_in_run_duplicates(store, project.id, unresolved)
    if report.imported and split == "train":
        refresh_cold_start(store, project.id)  # a diverse first batch until a model ranks the pool
    if report.imported >= STATISTICS_AFTER:
        refresh_statistics(store.sql_engine)
    if created and report.imported == 0 and not report.duplicates:
        _drop_empty_project(store, project.id)
    elif created and not request.classes and info.layout in ("csv", "csv_multilabel", "class_folders"):
        report.warnings += rare_class_warnings(store, project)
    report.warnings += no_label_warning(report, request, project)
    audit_import(store, request.actor_id, report)
    return report


def _resolve_in_run_duplicates(store: Store, project_id: int, unresolved: list[tuple[Duplicate, str]]) -> None:
    """A duplicate of an image inserted earlier in the same run learns that image's id after the insert."""
    if not unresolved:
        return
    with store.sessions.begin() as session:
        ids = existing_hashes(session, project_id)
    for duplicate, sha in unresolved:
        duplicate.duplicate_of = ids[sha][0] if sha in ids else -1


def _drop_empty_project(store: Store, project_id: int) -> None:
    with store.sessions.begin() as session:
        project = session.get(Project, project_id)
        if project is not None:
            session.delete(project)

