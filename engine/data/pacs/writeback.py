"""Write results back to the PACS: current masks as DICOM SEG (one per source series), class labels as TID 1500
SRs (one per study and reader), model output optionally and marked as such; STOW-RS to a DICOMweb server and/or
files in a folder outside MEDSSL_HOME (these objects carry the patient's identity, copied from the source)."""
from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select

from db import audit
from db.dicom_sources import sources_of
from db.enums import LabelSource
from db.exports import label_indices
from db.labels import current_labels
from db.models import Checkpoint, Label, Prediction, Project
from db.projects import get_project
from db.results import active_checkpoint_id
from db.roles import require
from db.store import Store
from engine.data.io import load_mask
from engine.data.pacs.connection import PacsConnection, PacsError, client
from engine.data.pacs.dicom_objects import ImageFinding, Origin, report, segmentation
from engine.data.pacs.errors import explain
from engine.data.pacs.pacs_import import ANY_SYNTAX

WHATS = ("dicom-seg", "dicom-sr")
FIRST_SERIES_NUMBER = 9001


@dataclass
class WritebackRequest:
    project: str
    what: str
    source: PacsConnection                  # where the source instances are fetched from
    to: PacsConnection | None = None        # STOW-RS target
    out: Path | None = None                 # and/or a folder
    include_model: bool = False


@dataclass
class WritebackResult:
    objects: int = 0
    images: int = 0
    stored: int = 0
    files: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Item:
    image_id: int
    origin: Origin
    mask_path: str | None = None
    classes: tuple[int, ...] = ()


def check_out_dir(out: Path, home: Path) -> Path:
    resolved = Path(os.path.realpath(out))
    home_resolved = Path(os.path.realpath(home))
    if resolved == home_resolved or home_resolved in resolved.parents:
        raise PacsError(f"--out {out}: DICOM objects carry the patient's name and id, so they may not be written "
                        f"inside the data folder {home}; choose a folder outside it")
    return resolved


def _model_origin(session, checkpoint_id: int) -> Origin:
    return Origin(True, session.get(Checkpoint, checkpoint_id).method, checkpoint_id)


def _items(session, project: Project, what: str, include_model: bool) -> list[_Item]:
    items: list[_Item] = []
    labeled: set[int] = set()
    for image, label, annotator in current_labels(session, project.id):
        labeled.add(image.id)
        origin = Origin(False, annotator or "reader")
        if what == "dicom-seg" and label.mask_path:
            items.append(_Item(image.id, Origin(False, "readers"), mask_path=label.mask_path))
        elif what == "dicom-sr" and label.value is not None:
            items.append(_Item(image.id, origin, classes=tuple(label_indices(label.value))))
    checkpoint_id = active_checkpoint_id(session, project.id) if include_model else None
    if checkpoint_id is None:
        return items
    origin = _model_origin(session, checkpoint_id)
    if what == "dicom-seg":
        rows = session.execute(select(Label.image_id, Label.mask_path).where(
            Label.checkpoint_id == checkpoint_id, Label.source == LabelSource.MODEL.value,
            Label.mask_path.is_not(None)).order_by(Label.id)).all()
        latest = dict(rows)
        items += [_Item(i, origin, mask_path=p) for i, p in latest.items() if i not in labeled]
    else:
        rows = session.execute(select(Prediction.image_id, Prediction.predicted)
                               .where(Prediction.checkpoint_id == checkpoint_id)).all()
        items += [_Item(i, origin, classes=tuple(label_indices(v))) for i, v in rows
                  if i not in labeled and label_indices(v)]
    return items


class _Sources:
    """Source instances fetched once each (attributes are what SEG/SR need; the pixels come along)."""

    def __init__(self, connection: PacsConnection):
        self.connection, self.dw, self.cache = connection, client(connection), {}

    def get(self, ref):
        import requests

        if ref.sop_uid not in self.cache:
            try:
                self.cache[ref.sop_uid] = self.dw.retrieve_instance(ref.study_uid, ref.series_uid, ref.sop_uid,
                                                                    media_types=ANY_SYNTAX)
            except requests.exceptions.RequestException as exc:
                raise PacsError(explain(exc, f"fetching source instance {ref.sop_uid}",
                                        self.connection.shown_url)) from None
        return self.cache[ref.sop_uid]


def _segmentations(home: Path, items, refs, sources: _Sources, classes, result: WritebackResult):
    groups: dict[tuple, list] = defaultdict(list)
    for item in items:
        ref = refs[item.image_id]
        key = (ref.series_uid, item.origin) if ref.frames == 1 else (ref.sop_uid, item.origin)
        groups[key].append((ref, load_mask(home / item.mask_path)))
    for (_, origin), members in groups.items():
        first = members[0][0]
        if first.frames > 1:   # one multi-frame source: every frame, empty where nothing was drawn
            ds = sources.get(first)
            masks = np.zeros((first.frames, int(ds.Rows), int(ds.Columns)), np.uint8)
            for ref, mask in members:
                masks[ref.frame_number - 1] = mask
            datasets = [ds]
        else:
            members.sort(key=lambda m: m[0].sop_uid)
            datasets = [sources.get(ref) for ref, _ in members]
            masks = np.stack([mask for _, mask in members])
        if not masks.any():
            result.skipped.append(f"series {first.series_uid}: every mask is empty")
            continue
        yield segmentation(datasets, masks, classes, origin, FIRST_SERIES_NUMBER + result.objects), len(members)


def _reports(items, refs, sources: _Sources, classes, result: WritebackResult):
    groups: dict[tuple, list[ImageFinding]] = defaultdict(list)
    for item in items:
        ref = refs[item.image_id]
        groups[(ref.study_uid, item.origin)].append(ImageFinding(
            sources.get(ref), ref.frame_number if ref.frames > 1 else None, list(item.classes)))
    for (_, origin), findings in groups.items():
        yield report(findings, classes, origin, FIRST_SERIES_NUMBER + result.objects), len(findings)


def run_writeback(store: Store, request: WritebackRequest, actor=None) -> WritebackResult:
    """Build every object first and only then store/write them, so a source fetch failure stores nothing."""
    import requests

    out = check_out_dir(request.out, store.config.home) if request.out is not None else None
    with store.sessions.begin() as session:
        project = get_project(session, request.project)
        if project is None:
            raise PacsError(f"no project {request.project!r}")
        if actor is not None:
            require(actor, "export", project)
        if (request.what == "dicom-seg") != (project.task == "segmentation"):
            raise PacsError(f"{request.what} needs a {'segmentation' if request.what == 'dicom-seg' else 'classification'}"
                            f" project; {project.name!r} is {project.task}")
        items = _items(session, project, request.what, request.include_model)
        refs = sources_of(session, [i.image_id for i in items])
        classes = list(project.classes)
        project_id = project.id
    result = WritebackResult()
    result.skipped += [f"image {i.image_id}: not imported from a PACS" for i in items if i.image_id not in refs]
    items = [i for i in items if i.image_id in refs]
    if not items:
        raise PacsError(f"nothing to write back: no current {'mask' if request.what == 'dicom-seg' else 'label'} "
                        "of an image imported over DICOMweb" + (" (with --include-model: no model output either)"
                                                                 if request.include_model else ""))
    sources = _Sources(request.source)
    build = _segmentations(store.config.home, items, refs, sources, classes, result) if request.what == "dicom-seg" \
        else _reports(items, refs, sources, classes, result)
    objects = []
    for obj, count in build:
        objects.append(obj)
        result.objects += 1
        result.images += count
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for k, obj in enumerate(objects):
            path = out / f"{request.what.split('-')[1]}-{k + 1:04d}.dcm"
            obj.save_as(path, enforce_file_format=True)
            result.files.append(path)
    if request.to is not None and objects:
        try:
            client(request.to).store_instances(objects)
        except requests.exceptions.RequestException as exc:
            raise PacsError(explain(exc, "storing", request.to.shown_url)) from None
        result.stored = len(objects)
    with store.sessions.begin() as session:
        audit.record(session, actor, f"export.{request.what}", project_id=project_id, target_kind="project",
                     target_id=project_id, after={"objects": result.objects, "images": result.images,
                                                  "stored": result.stored, "model": request.include_model})
    return result
