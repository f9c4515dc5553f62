"""Uncertain cases: the unlabeled pool ranked by the active checkpoint, every score shown; label these next."""
from __future__ import annotations

import streamlit as st

from app import state
from app.links import open_in_label
from app.queries import active_checkpoint_id, current_project, image_frame, thumbnails
from app.text import md
from app.widgets.image import data_url

SCORES = ["entropy", "margin", "least_confidence", "disagreement", "mc_variance"]
OPTIONAL = ("mc_variance",)   # only stored when the analysis ran MC-dropout passes; hidden when empty


def _label_next(ids: list[int]) -> None:
    state.put(state.PINNED_QUEUE, [int(i) for i in ids[1:]])
    open_in_label(ids[0])


def render() -> None:
    project = current_project()
    if project is None:
        return
    st.title(f"Uncertain cases · {md(project.name)}")
    _ranked(project.id)


@st.fragment(run_every=2.0)
def _ranked(project_id: int) -> None:
    """Re-runs on its own: a case labeled meanwhile leaves the list, a new analysis re-ranks it."""
    checkpoint_id = active_checkpoint_id(project_id)
    frame = image_frame(project_id, checkpoint_id) if checkpoint_id else None
    if frame is None or frame["acquisition_rank"].isna().all():
        st.info("No ranking yet: train a model; its analysis ranks the unlabeled images.")
        return
    top_n = st.slider("how many", 5, 100, 20, step=5)
    still_open = frame["status"].isin(["unlabeled", "uncertain"])  # ranked at analysis time, labeled since
    ranked = frame[still_open].dropna(subset=["acquisition_rank"]).sort_values("acquisition_rank").head(top_n)
    shown = [name for name in SCORES if name not in OPTIONAL or ranked[name].notna().any()]
    table = ranked[["image_id", "acquisition_rank", "predicted", *shown]].rename(
        columns={"acquisition_rank": "rank"})
    table.insert(1, "preview", [data_url(t) for t in thumbnails(ranked["image_id"].astype(int).tolist(), 64)])
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"preview": st.column_config.ImageColumn("preview", width="small")})
    st.button(f"Label these {len(ranked)} next", type="primary", on_click=_label_next,
              args=(ranked["image_id"].astype(int).tolist(),))
