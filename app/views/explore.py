"""Explore page: the UMAP map of all images; click -> preview + open in Label; lasso -> gallery + bulk label."""
from __future__ import annotations

import streamlit as st

from app import state
from app.navigation import open_in_label
from app.queries import active_checkpoint_id, current_project, image_frame, thumbnails
from app.resources import get_store
from app.widgets.charts import COLOR_COLUMNS, umap_scatter
from db.labels import add_label
from db.models import Image, Project
from db.projects import get_or_create_annotator

GALLERY_MAX = 60


def _bulk_label(project: Project, ids: list[int], class_index: int) -> int:
    with get_store().sessions.begin() as session:
        annotator = get_or_create_annotator(session, state.get(state.ANNOTATOR) or state.default_annotator())
        for image_id in ids:
            value = [class_index] if project.task == "multilabel" else class_index
            add_label(session, session.get(Image, image_id), annotator, value, comment="bulk label from Explore")
    image_frame.clear()
    return len(ids)


def _selection(frame, project: Project, ids: list[int]) -> None:
    chosen = frame[frame["image_id"].isin(ids)].copy()
    if len(chosen) == 1:
        row = chosen.iloc[0]
        cols = st.columns([1, 3])
        cols[0].image(thumbnails([int(row.image_id)], 192)[0], caption=f"image {row.image_id}")
        cols[1].write(f"**label** {row.label} · **model** {row.predicted} · entropy {row.entropy:.3f}")
        cols[1].button("Open in Label", type="primary", on_click=open_in_label, args=(int(row.image_id),))
        return
    st.subheader(f"{len(chosen)} selected")
    target = st.selectbox("bulk label the unlabeled ones as", project.classes)
    index = project.classes.index(target)
    unlabeled = chosen[chosen["status"].isin(["unlabeled", "uncertain"])]
    disagree = unlabeled[[p != target for p in unlabeled["predicted"]]]
    if len(disagree):
        st.warning(f"The model disagrees with '{target}' on {len(disagree)} of them (shown first): "
                   + ", ".join(map(str, disagree["image_id"].tolist()[:30])))
    if st.button(f"Label {len(unlabeled)} unlabeled as '{target}'", type="primary", disabled=unlabeled.empty):
        st.toast(f"labeled {_bulk_label(project, unlabeled['image_id'].tolist(), index)} images")
    ordered = list(disagree["image_id"]) + [i for i in chosen["image_id"] if i not in set(disagree["image_id"])]
    shown = [int(i) for i in ordered[:GALLERY_MAX]]
    captions = chosen.set_index("image_id").loc[shown]
    st.image(thumbnails(shown), caption=[f"{i} · {captions.loc[i, 'label']} · model {captions.loc[i, 'predicted']}"
                                         for i in shown], width=96)


def render() -> None:
    project = current_project()
    if project is None:
        return
    st.title(f"Explore · {project.name}")
    checkpoint_id = active_checkpoint_id(project.id)
    if checkpoint_id is None:
        st.info("No model yet. Train one (Train page); the map appears when its analysis is done.")
        return
    frame = image_frame(project.id, checkpoint_id)
    mapped = frame.dropna(subset=["x", "y"])
    if mapped.empty:
        st.info(f"Checkpoint {checkpoint_id} is not analyzed yet; the worker runs the analysis after training.")
        return
    color_by = st.segmented_control("colour by", list(COLOR_COLUMNS), default="current label")
    event = st.plotly_chart(umap_scatter(mapped, color_by or "current label"), on_select="rerun",
                            selection_mode=("points", "box", "lasso"), key="umap", width="stretch")
    ids = [int(p["customdata"][0]) for p in (event.selection.points if event and event.selection else [])]
    st.caption(f"{len(mapped)} images from checkpoint {checkpoint_id}. Click a point to preview it; "
               "draw a box or lasso to select many.")
    if ids:
        _selection(mapped, project, ids)
