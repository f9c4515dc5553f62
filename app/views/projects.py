"""Projects page: every project with its label progress, class balance and latest model."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app import state
from app.auth import acting_user
from app.palette import class_colour
from app.resources import get_store
from app.text import md
from app.views.project_forms import classes_form, create_form, demo_section, import_form
from app.views.reading_panels import agreement_panel, reading_settings_form
from db.images import label_counts
from db.projects import list_projects
from db.roles import allowed
from db.status import project_status


def class_balance(session, project) -> pd.DataFrame:
    """Labeled images per class; counted by db.images.label_counts (a SQL GROUP BY over the JSON label value
    is refused by PostgreSQL's json type)."""
    counts = label_counts(session, project.id, len(project.classes))
    return pd.DataFrame({"class": list(project.classes), "labeled images": counts}).set_index("class")


def render() -> None:
    st.title("Projects")
    store = get_store()
    with store.sessions.begin() as session:
        projects = list_projects(session)
        current = next((p for p in projects if p.id == state.get(state.PROJECT)), projects[0] if projects else None)
        current_name = current.name if current else None
        user = acting_user(session)
        may_import, may_configure = allowed(user, "import"), allowed(user, "project_settings")
    if not projects:
        if may_import:
            st.info("No project yet. Load the demo, or create a project and import your own images.")
            demo_section()
        else:
            st.info("No project yet: an admin creates projects and imports images.")
    if may_import:
        with st.expander("New project", expanded=not projects):
            create_form()
        if current_name:
            with st.expander(f"Import images into {md(current_name)}", expanded=False):
                import_form(current_name, current.id)
    if current is not None and may_configure:
        with st.expander(f"Reading settings of {md(current_name)}", expanded=False):
            reading_settings_form(current.id)
        with st.expander(f"PACS connection of {md(current_name)}", expanded=False):
            from app.views.pacs_forms import connection_form

            connection_form(current.id)
    with store.sessions.begin() as session:
        projects = list_projects(session)
        for project in projects:
            status = project_status(session, project)
            with st.container(border=True):
                st.subheader(f"{md(project.name)}  ·  {project.task}")
                cols = st.columns(4)
                cols[0].metric("images", status["images"])
                cols[1].metric("labeled", status["labeled"])
                cols[2].metric("unlabeled", status["unlabeled"])
                cols[3].metric("excluded", status["excluded"])
                if status["images"]:
                    st.progress(status["labeled"] / status["images"], text="label progress")
                if project.task != "segmentation" and status["labeled"]:
                    balance = class_balance(session, project).reset_index()
                    balance["colour"] = [class_colour(i) for i in range(len(balance))]  # as on every page
                    st.bar_chart(balance, x="class", y="labeled images", color="colour", horizontal=True, height=160)
                if status["review"]:
                    st.caption(f"{status['review']} cases wait for a lead on the Review page (readers disagreed)")
                if status["agreement"]:
                    agreement_panel(status["agreement"])
                if may_import and not (status["labeled"] or status["uncertain"] or status["excluded"]):
                    with st.expander("classes (editable until the first label)"):
                        classes_form(project.id, project.name, list(project.classes), project.task)
                active = status["checkpoints"]["active"]
                if active:
                    st.caption(f"active model #{active['id']} ({active['method']}), trained on "
                               f"{active['labels_used']} labels")
