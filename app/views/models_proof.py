"""Models & metrics opens with the proof: did the unlabeled pool help on *this* project (issue 16 §4)?

One sentence from the active checkpoint's paired comparison with its supervised shadow, which model is
active and why, the `activate` setting, and the project's label-efficiency curve (val metric vs train labels
over the checkpoint history, semi-supervised and supervised as two lines).
"""
from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from app.text import md
from db.project_settings import SETTINGS, effective, update
from db.status import comparison_owner, shadow_comparison
from engine.data.catalog import LABELED_ONLY_METHODS

METHOD_LABELS = {"src_mt": "SRC-MT", "mean_teacher": "Mean Teacher", "s2mts2": "S²MTS²", "fixmatch": "FixMatch",
                 "secl": "SECL", "seg_mean_teacher": "Mean Teacher", "seg_unimatch": "UniMatch", "supervised": "supervised",
                 "seg_supervised": "supervised", "plain": "plain loop"}
MIN_VAL_IMAGES = 20  # fewer val images than this cannot decide between two models
WIDE_CI_POINTS = 10.0  # a CI this wide that spans 0 cannot tell the two apart
ACTIVATE_LABELS = {"best_on_val": "the better on val (SSL or its supervised shadow)", "latest": "always the newest"}


def _points(value: float) -> str:
    return f"{100.0 * value:+.1f}"


def shadow_sentence(method: str, record: dict[str, Any] | None) -> str:
    """The Models page's first line, in words, from a stored comparison (None: nothing to compare)."""
    if not record:
        return "No supervised shadow to compare with: this checkpoint was trained on labels alone or with the shadow off."
    name, metric = METHOD_LABELS.get(method, method), "AUC" if record.get("metric") == "auc" else "Dice"
    n = int(record.get("n_val") or 0)
    delta, ci = record.get("delta"), record.get("ci95") or [None, None]
    if delta is None or None in ci:
        return (f"{name} vs supervised on your {n} val images: the {metric} is undefined for one of them "
                "(a single class in val?), so the two cannot be compared yet.")
    lo, hi = ci
    said = (f"{name} vs supervised on your {n} val images: {_points(delta)} {metric} "
            f"(95 % CI {_points(lo)} … {_points(hi)})")
    if n < MIN_VAL_IMAGES:
        return f"Too few val labels to decide — {said}. Label more val cases (at least {MIN_VAL_IMAGES})."
    if lo <= 0.0 <= hi and 100.0 * (hi - lo) > WIDE_CI_POINTS:
        return f"Too few val labels to decide — {said}: the interval spans 0 widely."
    if lo <= 0.0 <= hi:
        return f"{said}: no clear difference; the unlabeled pool neither helped nor hurt measurably."
    verdict = "the unlabeled pool helped" if lo > 0 else "labels alone did better"
    return f"{said}: {verdict}."


def efficiency_figure(points: list[dict[str, Any]], metric: str) -> go.Figure:
    """Val metric vs train labels used, one line per family (semi-supervised, supervised)."""
    fig = go.Figure()
    for family in ("semi-supervised", "supervised"):
        rows = sorted((p for p in points if p["family"] == family), key=lambda p: (p["labels"], p["id"]))
        if rows:
            fig.add_scatter(x=[p["labels"] for p in rows], y=[p["value"] for p in rows], mode="lines+markers",
                            name=family, text=[f"checkpoint {p['id']} · {p['method']}" for p in rows],
                            hovertemplate="%{text}<br>%{x} train labels: %{y:.4f}<extra></extra>")
    fig.update_layout(xaxis_title="train labels used", yaxis_title=f"val {metric}", height=320,
                      margin={"l": 10, "r": 10, "t": 30, "b": 10}, title="Label efficiency on this project")
    return fig


def efficiency_points(checkpoints: list[Any], key: str) -> list[dict[str, Any]]:
    points = []
    for c in checkpoints:
        metrics = c.metrics or {}
        value = ((metrics.get("val") or {}).get(metrics.get("role") or "student") or {}).get(key)
        train = (metrics.get("labels") or {}).get("train", c.labels_used)
        if value is not None and math.isfinite(value):  # NaN (single-class val) has no point on the curve
            points.append({"id": c.id, "method": c.method, "labels": train, "value": value,
                           "family": "supervised" if c.method in LABELED_ONLY_METHODS else "semi-supervised"})
    return points


def render_proof(session: Any, project: Any, checkpoints: list[Any]) -> None:
    active = next((c for c in checkpoints if c.is_active), None)
    if active is None:
        return
    record = shadow_comparison(session, active)
    ssl = comparison_owner(session, active)
    st.markdown(f"**{md(shadow_sentence(ssl.method, record))}**")
    activation = (ssl.metrics or {}).get("activation")
    if activation:
        st.caption(md(f"Active: checkpoint {active.id} ({METHOD_LABELS.get(active.method, active.method)}) — "
                      f"{activation.get('why', '')}."))
    rules = list(ACTIVATE_LABELS)
    current = effective(project)["activate"]
    chosen = st.selectbox("after a semi-supervised job, make active", rules, index=rules.index(current),
                          format_func=ACTIVATE_LABELS.get, help=SETTINGS["activate"].meaning)
    if chosen != current:
        update(session, project, {"activate": chosen})
        st.toast(md(f"activate = {chosen}: applies from the next train job"))
    key = "dice" if project.task == "segmentation" else "auc"
    points = efficiency_points(checkpoints, key)
    if len(points) >= 1:
        st.plotly_chart(efficiency_figure(points, "Dice" if key == "dice" else "AUC"), width="stretch")
