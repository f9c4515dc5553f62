"""Explore page: the UMAP map of all images; click -> preview + open in Label; lasso -> gallery + bulk label."""
from __future__ import annotations

import os

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.auth import acting_user
from app.links import open_in_label
from app.queries import active_checkpoint_id, current_project, frame_version, image_frame, thumbnails
from app.resources import get_store
from app.text import md
from app.widgets.umap_map import COLOR_COLUMNS, MapFigure, build_map, selected_ids
from db.engine import write_session
from db.labels import LabelError
from db.models import Image, Project
from db.reading import answer
from db.roles import PermissionDenied

GALLERY_MAX = 60
MAP_KEY = "umap"   # the map widget's key; its state exists only while the map was drawn in the previous run
SHOW_ALL_KEY = "explore.show_all"
# Points drawn on first paint; 0 (default) draws all. Measured at 50k points (docs/BENCHMARKS.md) a cap
# of 20k changed nothing on a first visit and saved ~0.3 s on revisits, so it is opt-in for huge projects.
FIRST_PAINT = int(os.environ.get("MEDSSL_MAP_FIRST_PAINT", "0"))


def _bulk_label(project: Project, ids: list[int], class_index: int) -> tuple[int, list[str]]:
    """Each case through db.reading.answer (roles, leases): a case another reader holds is left alone."""
    done, problems = 0, []
    with write_session(get_store().sessions) as session:
        user = acting_user(session)
        live = session.get(Project, project.id)
        for image_id in ids:
            value = [class_index] if project.task == "multilabel" else class_index
            try:
                answer(session, live, session.get(Image, image_id), user, value, comment="bulk label from Explore",
                       bulk=True)
                done += 1
            except (LabelError, PermissionDenied) as error:
                problems.append(str(error))
    return done, problems   # the new label rows change frame_version: the next run redraws the map


def _bulk_label_and_tell(project: Project, ids: list[int], class_index: int) -> None:
    """A callback, so the labels are written before the rerun counts the selection again (it once showed
    the pre-label counts until a reload)."""
    done, problems = _bulk_label(project, ids, class_index)
    st.toast(f"labeled {done} images" + (f"; {len(problems)} left alone: {md(problems[0])}" if problems else ""))


def gallery_order(chosen: list[int], disagree: list[int], limit: int = GALLERY_MAX) -> list[int]:
    """The gallery's cases: those the model disagrees on first, then the rest, at most `limit`. Linear in the
    selection: the set of disagreeing ids was once rebuilt for every selected case, and a box over 22,000
    points took 38 s to show its panel."""
    disagreeing = set(disagree)
    return (disagree + [i for i in chosen if i not in disagreeing])[:limit]


def _selection(frame: pd.DataFrame, project: Project, ids: list[int]) -> None:
    chosen = frame[frame["image_id"].isin(ids)].copy()
    if len(chosen) == 1:
        row = chosen.iloc[0]
        cols = st.columns([1, 3])
        cols[0].image(thumbnails([int(row.image_id)], 192)[0], caption=f"image {row.image_id}")
        cols[1].write(f"**label** {md(row.label)} · **model** {md(row.predicted)} · entropy {row.entropy:.3f}")
        cols[1].button("Open in Label", type="primary", on_click=open_in_label, args=(int(row.image_id),))
        return
    st.subheader(f"{len(chosen)} selected")
    target = st.selectbox("bulk label the unlabeled ones as", project.classes)
    index = project.classes.index(target)
    unlabeled = chosen[chosen["status"].isin(["unlabeled", "uncertain"])]
    disagree = unlabeled[unlabeled["predicted"] != target]  # a boolean Series: an empty selection stays a frame
    if len(disagree):
        st.warning(f"The model disagrees with '{md(target)}' on {len(disagree)} of them (shown first): "
                   + ", ".join(map(str, disagree["image_id"].tolist()[:30])))
    st.button(f"Label {len(unlabeled)} unlabeled as '{md(target)}'", type="primary", disabled=unlabeled.empty,
              on_click=_bulk_label_and_tell, args=(project, unlabeled["image_id"].tolist(), index))
    shown = [int(i) for i in gallery_order(chosen["image_id"].tolist(), disagree["image_id"].tolist())]
    captions = chosen.set_index("image_id").loc[shown]
    st.image(thumbnails(shown), caption=[f"{i} · {captions.loc[i, 'label']} · model {captions.loc[i, 'predicted']}"
                                         for i in shown], width=96)


@st.cache_resource(max_entries=8, show_spinner=False)
def _map(db_url: str, project_id: int, checkpoint_id: int, color_by: str, limit: int,
         version: tuple[int, ...], classes: tuple[str, ...] = ()) -> MapFigure:
    """The built figure per (project, checkpoint, colouring, cap, data version): reruns (a click, a lasso)
    reuse it instead of rebuilding 50k points. Read-only once built."""
    return build_map(image_frame(project_id, checkpoint_id, mapped_only=True, version=version), color_by, limit,
                     list(classes))


def _placeholder() -> go.Figure:
    """An empty map of the same size, drawn while the server reads the data: the browser starts loading
    Plotly (a 4.7 MB script, seconds on a busy machine) in parallel instead of after the data arrives."""
    fig = go.Figure()
    fig.update_layout(height=620, margin={"l": 10, "r": 10, "t": 30, "b": 10}, xaxis={"visible": False},
                      yaxis={"visible": False}, annotations=[{"text": "loading the map…", "showarrow": False,
                                                              "font": {"size": 16, "color": "#6b7280"}}])
    return fig


@st.fragment
def _map_and_selection(project: Project, checkpoint_id: int) -> None:
    """A fragment: a click or lasso reruns only the map and its selection panel, not the whole app."""
    color_by = st.segmented_control("colour by", list(COLOR_COLUMNS), default="current label") or "current label"
    header, slot = st.container(), st.empty()
    if MAP_KEY not in st.session_state:        # first paint of this page visit
        slot.plotly_chart(_placeholder(), width="stretch", config={"staticPlot": True})
    version = frame_version(project.id, checkpoint_id)   # fresh on fragment reruns too (labels may change)
    show_all = bool(st.session_state.get(SHOW_ALL_KEY))  # the toggle below, as last set
    drawn = _map(get_store().config.db_url, project.id, checkpoint_id, color_by, 0 if show_all else FIRST_PAINT,
                 version, tuple(project.classes))
    event = slot.plotly_chart(drawn.figure, on_select="rerun", selection_mode=("points", "box", "lasso"),
                              key=MAP_KEY, width="stretch")
    if drawn.total > FIRST_PAINT > 0:
        text, toggle = header.columns([5, 1], vertical_alignment="center")
        toggle.toggle("show all points", key=SHOW_ALL_KEY, help=f"Draw all {drawn.total:,} mapped images.")
        if drawn.shown < drawn.total:
            text.warning(f"Showing {drawn.shown:,} of {drawn.total:,} points: every labeled or unsure case, the "
                         "most informative unlabeled ones, a random sample of the rest. Box and lasso select "
                         "drawn points only.")
        else:
            text.caption(f"All {drawn.total:,} points drawn.")
    ids = selected_ids(event.selection.points if event and event.selection else [])
    st.caption(f"{drawn.total:,} images from checkpoint {checkpoint_id}. Hover for id, label, model and "
               "entropy; click a point to preview it; pick the box or lasso tool (top right) to select many.")
    if ids:
        _selection(image_frame(project.id, checkpoint_id, mapped_only=True, version=version), project, ids)


def render() -> None:
    project = current_project()
    if project is None:
        return
    st.title(f"Explore · {md(project.name)}")
    checkpoint_id = active_checkpoint_id(project.id)
    if checkpoint_id is None:
        st.info("No model yet. Train one (Train page); the map appears when its analysis is done.")
        return
    if not frame_version(project.id, checkpoint_id)[-1]:          # no map rows for this checkpoint yet
        st.info(f"Checkpoint {checkpoint_id} is not analyzed yet; the worker runs the analysis after training.")
        return
    _map_and_selection(project, checkpoint_id)
