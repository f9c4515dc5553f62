"""Relations: a case's nearest neighbours in the model's feature space ("analogous cases") as an image
strip and a graph, and flags for labeled cases whose labeled neighbours disagree (possible label errors)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app import state
from app.links import open_in_label
from app.queries import (
    active_checkpoint_id,
    case_neighbours,
    case_rows,
    current_project,
    edges_between,
    first_image_id,
    frame_version,
    label_errors,
    thumbnails,
)
from app.text import md
from app.widgets.charts import relation_graph
from app.widgets.image import data_url


def _layout(center: int, neighbours: pd.DataFrame) -> pd.DataFrame:
    """Centre in the middle, neighbours on a circle, closer when more similar."""
    angles = np.linspace(0, 2 * np.pi, len(neighbours), endpoint=False)
    radius = 1.5 - neighbours["similarity"].to_numpy()
    return pd.DataFrame({"image_id": [center, *neighbours["target"]],
                         "x": [0.0, *(radius * np.cos(angles))], "y": [0.0, *(radius * np.sin(angles))]})


def render() -> None:
    project = current_project()
    if project is None:
        return
    st.title(f"Relations · {md(project.name)}")
    checkpoint_id = active_checkpoint_id(project.id)
    version = frame_version(project.id, checkpoint_id) if checkpoint_id else None
    if not checkpoint_id or not version[-1]:     # no analysis rows for the active checkpoint yet
        st.info("No relation graph yet: it is computed by the analysis after training.")
        return
    flagged, n_flagged = label_errors(checkpoint_id, LABEL_ERRORS_SHOWN, version)
    flagged = flagged.copy()   # the cached frame is shared by every run: add columns to a copy
    flagged.insert(1, "label", case_rows(project.id, checkpoint_id, flagged["image_id"].tolist())["label"]
                   .reindex(flagged["image_id"]).to_numpy())
    default = state.get(state.CURRENT_IMAGE)
    if default is None or int(default) not in case_rows(project.id, checkpoint_id, [int(default)]).index:
        default = int(flagged["image_id"].iloc[0]) if len(flagged) else first_image_id(project.id)
    case = int(st.number_input("case (image id)", min_value=1, value=int(default or 1), step=1))
    neighbours = case_neighbours(checkpoint_id, case)
    cases = case_rows(project.id, checkpoint_id, [case, *neighbours["target"].astype(int)])
    if case not in cases.index:
        st.warning(f"No image {case} in this project.")
        return
    if neighbours.empty:
        st.info(f"Image {case} has no neighbours in checkpoint {checkpoint_id}'s graph (not analyzed).")
        return
    row = cases.loc[case]
    st.write(f"**image {case}** · label **{md(row['label'])}** · model **{md(row['predicted'])}**")
    labeled = cases.loc[neighbours["target"]]
    labeled = labeled[labeled["label"] != "unlabeled"]
    if row["label"] != "unlabeled" and len(labeled) >= 3 and (labeled["label"] != row["label"]).mean() > 0.5:
        st.warning(f"Possible label error: {int((labeled['label'] != row['label']).sum())} of {len(labeled)} "
                   f"labeled neighbours are not '{md(row['label'])}'.")
    ids = [case, *neighbours["target"].astype(int)]
    captions = [f"{i} · {cases.loc[i, 'label']}" + ("" if i == case else
                f" · sim {neighbours.set_index('target').loc[i, 'similarity']:.3f}") for i in ids]
    st.image(thumbnails(ids, 112), caption=captions, width=112)
    nodes = _layout(case, neighbours)
    nodes["label"] = cases.loc[nodes["image_id"], "label"].to_numpy()
    within = edges_between(checkpoint_id, ids)
    st.plotly_chart(relation_graph(case, nodes, within, list(project.classes)), width="stretch")
    st.button("Open this case in Label", on_click=open_in_label, args=(case,))
    _label_errors(flagged, n_flagged)


LABEL_ERRORS_SHOWN = 100


def _label_errors(flagged: pd.DataFrame, total: int) -> None:
    """The flagged cases with thumbnails; picking a row offers it on this page or in Label (issue 13 item 10)."""
    st.subheader(f"Possible label errors ({total})")
    st.caption("Labeled cases where most labeled neighbours carry another label. Pick a row to look at it."
               + (f" The {len(flagged)} most contradicted are listed." if total > len(flagged) else ""))
    if flagged.empty:
        return
    shown = flagged.copy()
    shown.insert(1, "preview", [data_url(t) for t in thumbnails(shown["image_id"].astype(int).tolist(), 64)])
    event = st.dataframe(shown, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                         key="relations.label_errors",
                         column_config={"preview": st.column_config.ImageColumn("preview", width="small")})
    rows = event.selection.rows if event and event.selection else []
    if rows:
        case = int(shown.iloc[rows[0]]["image_id"])
        cols = st.columns(2)
        cols[0].button(f"Show case {case} here", on_click=state.put, args=(state.CURRENT_IMAGE, case))
        cols[1].button(f"Open case {case} in Label", type="primary", on_click=open_in_label, args=(case,))
