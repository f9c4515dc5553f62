"""Export: labels (CSV/JSON, with annotator and time), masks (PNG zip), predictions (CSV), and the active
model as TorchScript with a model card (built by an `export` job on the worker)."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import streamlit as st
from sqlalchemy import select

from app.auth import acting_account, acting_user
from app.queries import current_project
from app.resources import get_store
from app.text import md
from db.exports import (
    LABEL_FIELDS,
    label_count,
    label_records,
    prediction_count,
    prediction_records,
    released,
    to_csv,
    to_json,
)
from db.jobs import enqueue, job_dict
from db.models import Job, Project
from db.results import active_checkpoint_id


def _masks_zip(records: list[dict], home: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for row in records:
            if row["mask_path"]:
                archive.write(home / row["mask_path"], f"masks/{row['image_id']}.png")
    return buffer.getvalue()


def _model_section(project: Project) -> None:
    store = get_store()
    st.subheader("Model")
    with store.sessions.begin() as session:
        checkpoint_id = active_checkpoint_id(session, project.id)
        jobs = [job_dict(j) for j in session.scalars(select(Job).where(Job.project_id == project.id,
                                                                        Job.kind == "export")
                                                     .order_by(Job.id.desc()).limit(5))]
    if checkpoint_id is None:
        st.caption("No model yet.")
        return
    if st.button(f"Export checkpoint {checkpoint_id} (TorchScript + model card)"):
        with store.sessions.begin() as session:
            enqueue(session, "export", {"checkpoint_id": checkpoint_id}, project_id=project.id, dedupe=True,
                    actor=acting_user(session))
        st.toast("export queued; the worker builds it")
    for job in jobs:
        files = (job["metrics"] or {}).get("files") or []
        st.caption(f"export job #{job['id']}: {job['status']} {md(job['message'] or '')}")
        for relative in files:
            path = store.config.home / relative
            if path.exists():
                st.download_button(f"download {path.name} (#{job['id']})", lambda p=path: p.read_bytes(),
                                   file_name=path.name, key=f"dl{job['id']}{path.name}")  # read on click


def render() -> None:
    project = current_project()
    if project is None:
        return
    st.title(f"Export · {md(project.name)}")
    _downloads(project.id)
    _pacs_section(project.id)


def _pacs_section(project_id: int) -> None:
    """Write back to the project's PACS (only for images imported from it): SEG for masks, SR for labels."""
    from db.dicom_sources import has_sources
    from engine.data.pacs.connection import PacsError, saved_connection
    from engine.data.pacs.writeback import WritebackRequest, run_writeback

    with get_store().sessions.begin() as session:
        project = session.get(Project, project_id)
        if not has_sources(session, project_id):
            return
        connection = saved_connection(project)
    st.subheader("Back to the PACS")
    if connection is None:
        st.caption("Images came from a PACS, but no connection is saved (Projects → PACS connection).")
        return
    what = "dicom-seg" if project.task == "segmentation" else "dicom-sr"
    kind = "masks as DICOM SEG" if what == "dicom-seg" else "class labels as DICOM SR (TID 1500)"
    model = st.checkbox("also the active model's output for unlabeled images, marked as model proposals")
    if st.button(md(f"Store current {kind} on {connection.shown_url}")):   # the URL is user text
        try:
            with st.spinner("building and storing…"):
                result = run_writeback(get_store(), WritebackRequest(project.name, what, connection, connection,
                                                                     None, model), acting_account())
        except (PacsError, PermissionError) as error:
            st.error(md(error))
            return
        st.success(f"stored {result.stored} objects covering {result.images} images")
        for line in result.skipped[:10]:
            st.caption(md(f"skipped {line}"))


@st.fragment(run_every=2.0)
def _downloads(project_id: int) -> None:
    """Re-runs on its own: new labels, a new model or a finished export job appear without a reload.

    Each rerun only counts rows; the files are built when a button is clicked (deferred `data`), so an open
    Export page does not rebuild every CSV, JSON and mask zip of the project every 2 s.
    """
    store = get_store()
    with store.sessions.begin() as session:  # attributes stay loaded after the commit (expire_on_commit=False)
        project = session.get(Project, project_id)
        labeled = label_count(session, project_id)
        checkpoint_id = active_checkpoint_id(session, project_id)
        predicted = prediction_count(session, project_id, checkpoint_id) if checkpoint_id else 0
    me = acting_account()
    st.subheader(f"Labels ({labeled} current labels)")
    cols = st.columns(3)
    cols[0].download_button("labels.csv", lambda: to_csv(_labels(project_id, me), LABEL_FIELDS),
                            file_name=f"{project.name}-labels.csv", mime="text/csv", disabled=not labeled)
    cols[1].download_button("labels.json", lambda: to_json(_labels(project_id, me)),
                            file_name=f"{project.name}-labels.json", mime="application/json", disabled=not labeled)
    if project.task == "segmentation":
        cols[2].download_button("masks.zip", lambda: _masks_zip(_labels(project_id, me, "masks"), store.config.home),
                                file_name=f"{project.name}-masks.zip", disabled=not labeled)
    st.subheader(f"Predictions ({predicted} images, checkpoint {checkpoint_id or '–'})")
    st.download_button("predictions.csv", lambda: to_csv(_predictions(project_id, checkpoint_id, me)) if predicted else "",
                       disabled=not predicted, file_name=f"{project.name}-predictions.csv", mime="text/csv")
    _model_section(project)


def _labels(project_id: int, actor, what: str = "labels") -> list[dict]:
    """Built on click; the role check and the audit row come with it (db.exports.released)."""
    with get_store().sessions.begin() as session:
        project = session.get(Project, project_id)
        rows = label_records(session, project)
        released(session, project, actor, what, len(rows))
        return rows


def _predictions(project_id: int, checkpoint_id: int, actor) -> list[dict]:
    with get_store().sessions.begin() as session:
        project = session.get(Project, project_id)
        rows = prediction_records(session, project, checkpoint_id)
        released(session, project, actor, "predictions", len(rows))
        return rows
