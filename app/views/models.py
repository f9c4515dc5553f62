"""Models & metrics: per-class AUC, ROC, confusion matrix, reliability (Dice & co. for masks); compare two."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app.links import open_in_label
from app.queries import current_project, thumbnails
from app.resources import get_store
from app.text import md
from app.views.models_proof import render_proof
from app.views.models_seg import SEG_HEADLINE, show_seg_report
from app.views.train import label_split
from app.widgets.charts import confusion_figure, reliability_figure, roc_figure
from app.widgets.image import data_url
from db.exports import label_names
from db.results import flipped_predictions, list_checkpoints

HEADLINE = ["auc", "sensitivity", "specificity", "f1", "balanced_accuracy", "ece"]


def class_names(value, classes: list[str]) -> str:
    """A stored prediction as class names for a table, e.g. 'pneumonia' or 'effusion; mass' ('–' for none)."""
    return label_names(classes, value, sep="; ") or "–"


def _checkpoint_table(checkpoints) -> pd.DataFrame:
    return pd.DataFrame([{"id": c.id, "active": c.is_active, "method": c.method, **label_split(c),
                          "label snapshot": (c.label_hash or "")[:10], "created": c.created_at}
                         for c in checkpoints])


def _report(checkpoint, split: str) -> dict | None:
    return ((checkpoint.metrics or {}).get("evaluation") or {}).get(split)


def headline_label(key: str, classes: list[str], task: str) -> str:
    """Sensitivity, specificity and F1 say which class they are about (CONTRACTS §5: the second of two)."""
    name = key.replace("_", " ")
    if key not in ("sensitivity", "specificity", "f1"):
        return name
    if task == "multiclass" and len(classes) == 2:
        return f"{name} ({classes[1]})"
    return f"{name} (macro over {'labels' if task == 'multilabel' else 'classes'})"


def _show_report(report: dict, classes: list[str], task: str = "multiclass") -> None:
    metrics = report["metrics"]
    cols = st.columns(len(HEADLINE))
    for col, key in zip(cols, HEADLINE):
        value = metrics.get(key)
        col.metric(md(headline_label(key, classes, task)), "–" if value is None else f"{value:.3f}")
    per_class = pd.DataFrame(metrics["per_class"]).T
    st.dataframe(per_class, width="stretch")
    left, middle, right = st.columns(3)
    left.plotly_chart(roc_figure(report["roc"], {k: v.get("auc") for k, v in metrics["per_class"].items()}),
                      width="stretch")
    if "confusion" in report:
        middle.plotly_chart(confusion_figure(report["confusion"], classes), width="stretch")
    right.plotly_chart(reliability_figure(report["reliability"], metrics.get("ece")), width="stretch")


def _compare(session, checkpoints, split: str, headline: list[str], classes: list[str]) -> None:
    st.subheader("Compare two checkpoints")
    ids = [c.id for c in checkpoints]
    cols = st.columns(2)
    first = cols[0].selectbox("from", ids, index=max(len(ids) - 2, 0))
    second = cols[1].selectbox("to", ids, index=len(ids) - 1)
    by_id = {c.id: c for c in checkpoints}
    a, b = _report(by_id[first], split), _report(by_id[second], split)
    if a and b:
        deltas = {k: (b["metrics"].get(k) or 0) - (a["metrics"].get(k) or 0) for k in headline}
        st.dataframe(pd.DataFrame([deltas], index=[f"#{second} − #{first}"]), width="stretch")
    flips = flipped_predictions(session, first, second)
    st.caption(f"{len(flips)} predictions flipped between #{first} and #{second} (analyzed images only).")
    if flips:
        _flips_table(flips[:FLIPS_SHOWN], classes, first, second)


FLIPS_SHOWN = 200


def _flips_table(flips: list, classes: list[str], first: int, second: int) -> None:
    """Flipped cases with thumbnails and class names; a picked row opens in Label (issue 13 item 10)."""
    table = pd.DataFrame([(image_id, class_names(a, classes), class_names(b, classes)) for image_id, a, b in flips],
                         columns=["image_id", f"#{first}", f"#{second}"])
    table.insert(1, "preview", [data_url(t) for t in thumbnails(table["image_id"].astype(int).tolist(), 64)])
    event = st.dataframe(table, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                         key="models.flips", column_config={"preview": st.column_config.ImageColumn("preview")})
    rows = event.selection.rows if event and event.selection else []
    if rows:
        case = int(table.iloc[rows[0]]["image_id"])
        st.button(f"Open case {case} in Label", type="primary", on_click=open_in_label, args=(case,))


def render() -> None:
    store = get_store()
    project = current_project()
    if project is None:
        return
    with store.sessions.begin() as session:
        project = session.merge(project, load=False)
        st.title(f"Models & metrics · {md(project.name)}")
        checkpoints = list_checkpoints(session, project.id)
        if not checkpoints:
            st.info("No checkpoints yet: train a model on the Train page.")
            return
        render_proof(session, project, checkpoints)
        st.dataframe(_checkpoint_table(checkpoints), hide_index=True, width="stretch")
        active = next((c for c in checkpoints if c.is_active), checkpoints[-1])
        chosen_id = st.selectbox("checkpoint", [c.id for c in checkpoints],
                                 index=[c.id for c in checkpoints].index(active.id))
        chosen = next(c for c in checkpoints if c.id == chosen_id)
        splits = list(((chosen.metrics or {}).get("evaluation") or {}).keys())
        if not splits:
            st.info(f"Checkpoint {chosen.id} has no evaluation yet; it is computed by its analysis job.")
        else:
            split = st.segmented_control("evaluated on", splits, default=splits[0]) or splits[0]
            st.caption("Selection used the val split only; test is reported, never selected on.")
            if project.task == "segmentation":
                show_seg_report(_report(chosen, split))
            else:
                _show_report(_report(chosen, split), list(project.classes), project.task)
        if len(checkpoints) > 1:
            _compare(session, checkpoints, splits[0] if splits else "val",
                     SEG_HEADLINE if project.task == "segmentation" else HEADLINE, list(project.classes))
