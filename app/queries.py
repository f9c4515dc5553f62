"""Read-only queries for the pages, returned as DataFrames (cached until the rows they read change)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st
from sqlalchemy import Text, cast, func, select

from app.resources import get_store
from db import results
from db.models import Image, Label, Prediction, Project, Projection, UncertaintyScore


def current_project() -> Project | None:
    """The sidebar's project (detached, safe to read after the session closes), or None with a hint shown."""
    from app import state

    with get_store().sessions.begin() as session:
        project = session.get(Project, state.get(state.PROJECT) or 0)
        if project is not None:
            session.expunge(project)
    if project is None:
        st.info("Create or import a project first (Projects page).")
    return project


def active_checkpoint_id(project_id: int) -> int | None:
    with get_store().sessions.begin() as session:
        return results.active_checkpoint_id(session, project_id)


_SCORES = ("entropy", "margin", "least_confidence", "disagreement", "mc_variance", "acquisition_rank")


def _names(classes: list[str], value) -> str:
    if value is None:
        return ""
    return ", ".join(classes[i] for i in value) if isinstance(value, list) else classes[value]


def _decode_json_column(raw: list, classes: list[str]) -> tuple[list, list[str]]:
    """JSON text (None/NaN when missing) -> (values, class names), decoding each distinct text once: a
    100k-image project has a handful of distinct labels, and per-row json.loads was most of the query time."""
    raw = [text if isinstance(text, str) else None for text in raw]
    decoded = {text: (None if text is None else json.loads(text)) for text in set(raw)}
    names = {text: _names(classes, value) for text, value in decoded.items()}
    return [decoded[t] for t in raw], [names[t] for t in raw]


def frame_version(project_id: int, checkpoint_id: int | None) -> tuple[int, ...]:
    """Cheap token that changes whenever image_frame's answer can: a new label row (every label, undo and
    bulk label appends one), an import, or a (re-)analysis of the checkpoint (which rewrites its rows)."""
    with get_store().sessions.begin() as session:
        label_max = session.scalar(select(func.max(Label.id))) or 0
        images = session.execute(select(func.count(), func.max(Image.id)).where(Image.project_id == project_id)).one()
        analysis = 0 if checkpoint_id is None else session.scalar(
            select(func.max(Projection.id)).where(Projection.checkpoint_id == checkpoint_id)) or 0
    return int(label_max), int(images[0]), int(images[1] or 0), int(analysis)


def image_frame(project_id: int, checkpoint_id: int | None, mapped_only: bool = False,
                version: tuple[int, ...] | None = None) -> pd.DataFrame:
    """One row per image (with mapped_only: per image on the checkpoint's map): split, status, current
    label, and (with a checkpoint) map position, prediction and uncertainty. Cached until frame_version
    changes, so reruns and page revisits skip the query; pass version when the caller already has it."""
    version = version or frame_version(project_id, checkpoint_id)
    return _image_frame(get_store().config.db_url, project_id, checkpoint_id,
                        mapped_only and checkpoint_id is not None, version)


@st.cache_resource(max_entries=6, show_spinner=False)
def _image_frame(db_url: str, project_id: int, checkpoint_id: int | None, mapped_only: bool,
                 version: tuple[int, ...]) -> pd.DataFrame:
    """One joined query read as raw column values (Core, JSON as text: the ORM row layer and per-row
    json.loads were most of the time at 100k rows). cache_resource, not cache_data: callers only derive
    new frames (pandas copy-on-write), and unpickling 100k rows on every hit cost ~0.1 s. db_url keys the
    cache to one database."""
    with get_store().sessions.begin() as session:
        classes = session.get(Project, project_id).classes
        columns = [Image.id, Image.split, Image.label_status, cast(Label.value, Text)]
        query = select(*columns).outerjoin(Label, Label.id == Image.current_label_id)
        if checkpoint_id is not None:
            on_map = (Projection.image_id == Image.id) & (Projection.checkpoint_id == checkpoint_id)
            query = (query.add_columns(Projection.x, Projection.y, cast(Prediction.predicted, Text),
                                       *(getattr(UncertaintyScore, name) for name in _SCORES))
                     .join(Projection, on_map, isouter=not mapped_only)
                     .outerjoin(Prediction, (Prediction.image_id == Image.id)
                                & (Prediction.checkpoint_id == checkpoint_id))
                     .outerjoin(UncertaintyScore, (UncertaintyScore.image_id == Image.id)
                                & (UncertaintyScore.checkpoint_id == checkpoint_id)))
        result = session.connection().execute(query.where(Image.project_id == project_id))
        rows = result.cursor.fetchall()   # the DBAPI's plain tuples: pandas probes Row objects slowly
        result.close()
    names = ["image_id", "split", "status", "label_value"]
    if checkpoint_id is not None:
        names += ["x", "y", "predicted_value", *_SCORES]
    frame = pd.DataFrame.from_records(rows, columns=names, coerce_float=True)
    labels, frame["label"] = _decode_json_column(frame["label_value"].tolist(), classes)
    frame["label_value"] = pd.Series(labels, dtype=object)
    frame["label"] = frame["label"].replace("", "unlabeled")
    if checkpoint_id is not None:
        for name in ("x", "y", *_SCORES):
            frame[name] = frame[name].astype(np.float64)
        predicted, frame["predicted"] = _decode_json_column(frame["predicted_value"].tolist(), classes)
        frame["predicted_value"] = pd.Series(predicted, dtype=object)
        frame["model_disagrees"] = [lv is not None and pv is not None and lv != pv
                                    for lv, pv in zip(labels, predicted)]
    return frame.sort_values("image_id", ignore_index=True)   # sorting here beats SQLite's temp B-tree


def case_rows(project_id: int, checkpoint_id: int, image_ids: list[int]) -> pd.DataFrame:
    """Label and prediction (class names; "unlabeled" when none) of a few of the project's images, indexed by
    image_id; ids not in the project are absent. Relations reads its dozen cases this way instead of the whole
    project's frame, which was most of its first visit's server time (0.13 s of 0.3 s at 5,808 images)."""
    with get_store().sessions.begin() as session:
        classes = session.get(Project, project_id).classes
        rows = session.connection().execute(
            select(Image.id, cast(Label.value, Text), cast(Prediction.predicted, Text))
            .outerjoin(Label, Label.id == Image.current_label_id)
            .outerjoin(Prediction, (Prediction.image_id == Image.id) & (Prediction.checkpoint_id == checkpoint_id))
            .where(Image.project_id == project_id, Image.id.in_([int(i) for i in image_ids]))).all()
    frame = pd.DataFrame(rows, columns=["image_id", "label_value", "predicted_value"]).set_index("image_id")
    frame["label"] = pd.Series(_decode_json_column(frame["label_value"].tolist(), classes)[1],
                               index=frame.index, dtype=object).replace("", "unlabeled")
    frame["predicted"] = _decode_json_column(frame["predicted_value"].tolist(), classes)[1]
    return frame[["label", "predicted"]]


def first_image_id(project_id: int) -> int | None:
    with get_store().sessions.begin() as session:
        return session.scalar(select(func.min(Image.id)).where(Image.project_id == project_id))


def thumbnails(image_ids: list[int], size: int = 96) -> list[np.ndarray]:
    """Small uint8 previews from the stored originals (windowed when deep)."""
    import cv2

    from app.widgets.image import render
    from db.images import resolve_path
    from engine.data.io import load_original

    store = get_store()
    with store.sessions.begin() as session:
        paths = dict(session.execute(select(Image.id, Image.stored_path).where(Image.id.in_(image_ids))).all())
    out = []
    for image_id in image_ids:
        pixels = render(load_original(resolve_path(store.config.home, paths[image_id])))
        out.append(cv2.resize(pixels, (size, size), interpolation=cv2.INTER_AREA))
    return out


def case_neighbours(checkpoint_id: int, image_id: int) -> pd.DataFrame:
    """One case's nearest neighbours (target, rank, similarity), nearest first: an indexed read."""
    from db.relations import neighbours

    with get_store().sessions.begin() as session:
        rows = neighbours(session, checkpoint_id, image_id)
    return pd.DataFrame(rows, columns=["target", "rank", "similarity"])


def edges_between(checkpoint_id: int, image_ids: list[int]) -> pd.DataFrame:
    """The relation edges among a few images (source, target, rank, similarity), for the small graph."""
    from db.relations import edges_among

    with get_store().sessions.begin() as session:
        rows = edges_among(session, checkpoint_id, image_ids)
    return pd.DataFrame(rows, columns=["source", "target", "rank", "similarity"])


def label_errors(checkpoint_id: int, limit: int, version: tuple[int, ...]) -> tuple[pd.DataFrame, int]:
    """Possible label errors (image_id, labeled_neighbours, disagreeing, share), most contradicted first, at most
    `limit`, and how many there are. Cached until frame_version changes (a label, a re-analysis)."""
    return _label_errors(get_store().config.db_url, checkpoint_id, limit, version)


@st.cache_resource(max_entries=4, show_spinner=False)
def _label_errors(db_url: str, checkpoint_id: int, limit: int,
                  version: tuple[int, ...]) -> tuple[pd.DataFrame, int]:
    from db.relations import label_disagreements

    with get_store().sessions.begin() as session:
        rows, total = label_disagreements(session, checkpoint_id, limit=limit)
    flagged = pd.DataFrame(rows, columns=["image_id", "labeled_neighbours", "disagreeing"])
    flagged["share"] = flagged["disagreeing"] / flagged["labeled_neighbours"].clip(lower=1)
    return flagged, total
