"""Projects page: the project's saved PACS connection and an import over DICOMweb (engine.data.pacs, torch-free).

The URL, auth kind and user name are project settings; the password or token goes to a 0600 file outside the
data folder (engine.data.pacs.connection) and is never shown again, logged or exported.
"""
from __future__ import annotations

import streamlit as st

from app.auth import acting_user
from app.resources import get_store
from app.text import md
from app.views.import_report import show_report
from db.models import Project
from db.project_settings import effective, update
from db.roles import PermissionDenied
from engine.data.importer import ImportRequest, ImportUsageError
from engine.data.pacs.connection import AUTH_KINDS, PacsError, load_secret, save_secret, saved_connection


def connection_form(project_id: int) -> None:
    with get_store().sessions.begin() as session:
        values = effective(session.get(Project, project_id))
    has_secret = load_secret(project_id) is not None
    with st.form(f"pacs_connection_{project_id}"):
        url = st.text_input("DICOMweb URL", value=values["pacs_url"], placeholder="http://pacs.local:8042/dicom-web")
        cols = st.columns(3)
        auth = cols[0].radio("sign-in", AUTH_KINDS, index=AUTH_KINDS.index(values["pacs_auth"]), horizontal=True)
        user = cols[1].text_input("user (basic)", value=values["pacs_user"])
        secret = cols[2].text_input("password / token" + (" (saved; empty keeps it)" if has_secret else ""),
                                    type="password")
        if st.form_submit_button("Save PACS connection"):
            try:
                with get_store().sessions.begin() as session:
                    project = session.get(Project, project_id)
                    update(session, project, _checked(url, auth, user), actor=acting_user(session))
                if secret:
                    save_secret(project_id, secret)
            except (ValueError, PermissionDenied) as error:
                st.error(f"Not saved: {md(error)}")
                return
            st.toast("PACS connection saved")
            st.rerun()   # the import form above reads the saved connection


def _checked(url: str, auth: str, user: str) -> dict:
    from db.project_settings import SETTINGS

    return {"pacs_url": SETTINGS["pacs_url"].parse(url), "pacs_auth": auth, "pacs_user": SETTINGS["pacs_user"].parse(user)}


def import_form(project_name: str, project_id: int, actor_name: str, actor_id: int) -> None:
    with get_store().sessions.begin() as session:
        connection = saved_connection(session.get(Project, project_id))
    if connection is None:
        st.info("No PACS connection saved for this project: an admin saves one under 'PACS connection' below.")
        return
    with st.form(f"pacs_import_{project_id}"):
        st.caption(f"From {md(connection.shown_url)}")
        studies = st.text_area("Study Instance UIDs (one per line; empty: every study matching the filter)")
        query = st.text_input("filter (QIDO)", placeholder="Modality=CR&StudyDate=20240101-20241231")
        limit = st.number_input("at most this many instances (0: no limit)", min_value=0, max_value=10_000_000)
        if not st.form_submit_button("Import from PACS"):
            return
    from engine.data.pacs.pacs_import import PacsRequest, run_pacs_import

    bar = st.progress(0.0, text="searching the PACS…")

    def progress(done: int, total: int | None) -> None:
        if total:
            bar.progress(min(done / total, 1.0), text=f"fetched {done} of {total} instances")

    request = ImportRequest(project=project_name, source=None, annotator=actor_name, actor_id=actor_id)
    uids = [line.strip() for line in studies.splitlines() if line.strip()] or None
    try:
        report = run_pacs_import(get_store(), request, PacsRequest(connection, uids, query.strip() or None,
                                                                   int(limit) or None), progress)
    except (PacsError, ImportUsageError) as error:
        bar.empty()
        st.error(f"Nothing imported: {md(error)}")
        return
    bar.empty()
    show_report(report)
