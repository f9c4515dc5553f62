"""Read-only queries for the pages, returned as DataFrames (cached briefly; writes clear the cache)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
from sqlalchemy import select

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


def _names(classes: list[str], value) -> str:
    if value is None:
        return ""
    return ", ".join(classes[i] for i in value) if isinstance(value, list) else classes[value]


@st.cache_data(ttl=5, show_spinner=False)
def image_frame(project_id: int, checkpoint_id: int | None) -> pd.DataFrame:
    """One row per image: split, status, current label, and (with a checkpoint) map position, prediction
    and uncertainty. One joined query, so the 50k-point map loads in one round trip."""
    with get_store().sessions.begin() as session:
        classes = session.get(Project, project_id).classes
        columns = [Image.id, Image.split, Image.label_status, Image.source_name, Label.value]
        query = select(*columns).outerjoin(Label, Label.id == Image.current_label_id)
        if checkpoint_id is not None:
            query = (query.add_columns(Projection.x, Projection.y, Prediction.predicted, Prediction.probs,
                                       UncertaintyScore.entropy, UncertaintyScore.margin,
                                       UncertaintyScore.least_confidence, UncertaintyScore.disagreement,
                                       UncertaintyScore.acquisition_rank)
                     .outerjoin(Projection, (Projection.image_id == Image.id)
                                & (Projection.checkpoint_id == checkpoint_id))
                     .outerjoin(Prediction, (Prediction.image_id == Image.id)
                                & (Prediction.checkpoint_id == checkpoint_id))
                     .outerjoin(UncertaintyScore, (UncertaintyScore.image_id == Image.id)
                                & (UncertaintyScore.checkpoint_id == checkpoint_id)))
        rows = session.execute(query.where(Image.project_id == project_id).order_by(Image.id)).all()
    names = ["image_id", "split", "status", "source_name", "label_value"]
    if checkpoint_id is not None:
        names += ["x", "y", "predicted_value", "probs", "entropy", "margin", "least_confidence", "disagreement",
                  "acquisition_rank"]
    frame = pd.DataFrame([tuple(r) for r in rows], columns=names)
    labels = [r[4] for r in rows]          # raw JSON values: pandas would turn ints with gaps into floats
    frame["label"] = [_names(classes, v) or "unlabeled" for v in labels]
    if checkpoint_id is not None:
        predicted = [r[7] for r in rows]
        frame["predicted"] = [_names(classes, v) for v in predicted]
        frame["model_disagrees"] = [lv is not None and pv is not None and lv != pv
                                    for lv, pv in zip(labels, predicted)]
    return frame


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


@st.cache_data(ttl=30, show_spinner=False)
def relation_edges(checkpoint_id: int) -> pd.DataFrame:
    """All kNN edges of a checkpoint (source, target, rank, similarity)."""
    from db.models import RelationEdge

    with get_store().sessions.begin() as session:
        rows = session.execute(select(RelationEdge.source_image_id, RelationEdge.target_image_id,
                                      RelationEdge.rank, RelationEdge.similarity)
                               .where(RelationEdge.checkpoint_id == checkpoint_id)).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=["source", "target", "rank", "similarity"])


def neighbour_disagreement(frame: pd.DataFrame, edges: pd.DataFrame, min_labeled: int = 3) -> pd.DataFrame:
    """Labeled images whose labeled neighbours mostly carry another label: possible label errors."""
    labels = frame.set_index("image_id")["label"]
    labeled = labels[labels != "unlabeled"]
    pairs = edges[edges["source"].isin(labeled.index) & edges["target"].isin(labeled.index)].copy()
    pairs["source_label"] = labeled.reindex(pairs["source"]).to_numpy()
    pairs["target_label"] = labeled.reindex(pairs["target"]).to_numpy()
    pairs["disagrees"] = pairs["source_label"] != pairs["target_label"]
    summary = pairs.groupby("source").agg(labeled_neighbours=("target", "size"), disagreeing=("disagrees", "sum"),
                                          label=("source_label", "first"))
    summary["share"] = summary["disagreeing"] / summary["labeled_neighbours"]
    flagged = summary[(summary["labeled_neighbours"] >= min_labeled) & (summary["share"] > 0.5)]
    return flagged.sort_values(["share", "labeled_neighbours"], ascending=False).reset_index(names="image_id")
