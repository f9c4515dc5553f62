"""Train page: choose a method -> Job row; live progress (fragment polling the Job row); checkpoints."""
from __future__ import annotations

import pandas as pd
import streamlit as st
from sqlalchemy import select

from app.auth import acting_user
from app.queries import current_project
from app.resources import get_store
from app.text import md
from db.jobs import enqueue, job_dict, request_cancel
from db.models import Job, Project
from db.queue_rank import publish_in_background
from db.readiness import training_readiness
from db.results import list_checkpoints, set_active

# engine.data.catalog.TASK_DEFAULTS first (a test keeps them equal): the benchmark's pick, not a guess
CLASSIFICATION_METHODS = {"S²MTS² (self-supervised pre-training + MT)": "s2mts2", "Mean Teacher": "mean_teacher",
                          "SRC-MT (relation-driven mean teacher)": "src_mt",
                          "FixMatch (ours, beyond the seed papers)": "fixmatch",
                          "Supervised only (shadow baseline)": "supervised"}
BACKBONES = {"compact CNN (fast on CPU)": "compact_cnn", "ResNet-18 (small input)": "resnet18_small",
             "DenseNet-121 (GPU)": "densenet121"}
SEGMENTATION_METHODS = {"SECL (self-ensembling contrastive)": "secl", "Mean Teacher (segmentation)": "seg_mean_teacher",
                        "UniMatch (ours, beyond the seed papers)": "seg_unimatch",
                        "Supervised only (shadow baseline)": "seg_supervised"}
SEG_BACKBONES = {"small U-Net (fast on CPU)": "unet_small", "U-Net (GPU)": "unet"}
REFRESH_S = 2.0  # what a finished job changes appears within this (issue 13 item 8: within 3 s)


def _enqueue_form(project: Project) -> None:
    segmentation = project.task == "segmentation"
    methods = SEGMENTATION_METHODS if segmentation else CLASSIFICATION_METHODS
    backbones = SEG_BACKBONES if segmentation else BACKBONES
    with st.form("train"):
        cols = st.columns(4)
        method = cols[0].selectbox("method", list(methods))
        backbone = cols[1].selectbox("backbone", list(backbones))
        epochs = cols[2].number_input("epochs", 1, 500, 10)
        budget = cols[3].number_input("time budget (min, 0 = none)", 0.0, 600.0, 0.0, step=1.0)
        if st.form_submit_button("Start training", type="primary"):
            params = {"method": methods[method], "backbone": backbones[backbone],
                      "epochs": int(epochs)}
            if budget:
                params["budget_minutes"] = float(budget)
            with get_store().sessions.begin() as session:
                readiness = training_readiness(session, session.get(Project, project.id))
                if not readiness.ready:
                    st.error("Not started: " + md("; ".join(readiness.problems)))
                    return
                job = enqueue(session, "train", params, project_id=project.id, actor=acting_user(session))
            for warning in readiness.warnings:
                st.warning(md(warning))
            st.toast(f"queued train job {job.id}")


def _cancel(job_id: int) -> None:
    with get_store().sessions.begin() as session:
        request_cancel(session, job_id, actor=acting_user(session))


@st.fragment(run_every=REFRESH_S)
def job_progress(project_id: int) -> None:
    """Re-runs every 2 s on its own, so the page never blocks on training."""
    with get_store().sessions.begin() as session:
        jobs = [job_dict(j) for j in session.scalars(select(Job).where(Job.project_id == project_id)
                                                     .order_by(Job.id.desc()).limit(10))]
    if not jobs:
        st.caption("No jobs yet.")
        return
    for job in jobs:
        if job["status"] in ("queued", "running"):
            cols = st.columns([5, 1])
            cols[0].progress(job["progress"], text=f"#{job['id']} {job['kind']} · {job['status']} · "
                                                   f"{md(job['message'] or '')}")
            cols[1].button("Cancel", key=f"cancel{job['id']}", on_click=_cancel, args=(job["id"],))
            curve = (job["metrics"] or {}).get("curve")
            if curve:
                score = f"val {(job['metrics'] or {}).get('score', 'score')}"
                if len(curve) == 1:  # a line chart of one point draws nothing
                    point = curve[0]
                    value = point.get("val_score")
                    st.metric(f"{score} after epoch {point['epoch']:g}", "–" if value is None else f"{value:.4f}")
                else:
                    st.line_chart(pd.DataFrame(curve).set_index("epoch")[["val_score"]]
                                  .rename(columns={"val_score": score}), height=180)
    table = pd.DataFrame([{k: j[k] for k in ("id", "kind", "status", "progress", "attempts", "message")}
                          for j in jobs])
    st.dataframe(table, hide_index=True, width="stretch")


def label_split(checkpoint) -> dict[str, int | None]:
    """Train labels (what it learned from) and val labels (what it was selected on), not one sum."""
    split = (checkpoint.metrics or {}).get("labels") or {}
    return {"train labels": split.get("train", checkpoint.labels_used if not split else None),
            "val labels": split.get("val")}


def _val_score(checkpoint) -> float | None:
    """Validation AUC (classification) or Dice (segmentation) of the selected model role."""
    val = ((checkpoint.metrics or {}).get("val") or {}).get((checkpoint.metrics or {}).get("role") or "student") or {}
    return val.get("auc", val.get("dice"))


@st.fragment(run_every=REFRESH_S)
def _checkpoints(project: Project) -> None:
    """Re-runs on its own: a checkpoint a finished job registers shows up without a reload."""
    with get_store().sessions.begin() as session:
        rows = list_checkpoints(session, project.id)
        table = pd.DataFrame([{"id": c.id, "active": c.is_active, "method": c.method, "backbone": c.backbone,
                               "val score": _val_score(c),
                               **label_split(c), "created": c.created_at} for c in rows])
    if table.empty:
        st.caption("No checkpoints yet.")
        return
    st.dataframe(table, hide_index=True, width="stretch")
    pick = st.selectbox("active checkpoint (roll back by choosing an older one)", table["id"].tolist(),
                        index=int(table.index[table["active"]].tolist()[0]) if table["active"].any() else 0)
    if st.button("Set active") and pick is not None:
        with get_store().sessions.begin() as session:
            set_active(session, int(pick), actor=acting_user(session))
        publish_in_background(get_store().sessions, project.id)   # the Label queue follows the rollback
        st.toast(f"checkpoint {pick} is active")


def render() -> None:
    project = current_project()
    if project is None:
        return
    st.title(f"Train · {md(project.name)}")
    _enqueue_form(project)
    st.subheader("Jobs")
    job_progress(project.id)
    st.subheader("Checkpoints")
    _checkpoints(project)
