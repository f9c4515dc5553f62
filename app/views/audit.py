"""Audit page (admins): every write, newest first, filtered; CSV export. Nothing here can change a row."""
from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from app.auth import acting_user
from app.queries import current_project
from app.resources import get_store
from app.text import md
from db import audit
from db.exports import to_csv
from db.roles import PermissionDenied, require

ACTIONS = ["", "label", "job", "checkpoint", "settings", "import", "export", "project", "user"]


def render() -> None:
    project = current_project()
    st.title("Audit log")
    cols = st.columns([2, 2, 1, 1])
    scope = cols[0].selectbox("scope", ["this project", "everything"] if project else ["everything"])
    who = cols[1].text_input("user")
    action = cols[2].selectbox("action", ACTIONS, format_func=lambda a: a or "all")
    limit = cols[3].number_input("rows", 10, 100_000, 500, step=100)
    with get_store().sessions.begin() as session:
        try:
            require(acting_user(session), "audit")
        except PermissionDenied as error:
            st.error(md(error))
            return
        rows = [audit.as_dict(e) for e in audit.events(
            session, project_id=project.id if project and scope == "this project" else None,
            user_name=who.strip() or None, action=action or None, limit=int(limit))]
    if not rows:
        st.info("No event matches.")
        return
    table = pd.DataFrame([{**r, "before": json.dumps(r["before"]), "after": json.dumps(r["after"])} for r in rows])
    st.dataframe(table, hide_index=True, width="stretch")
    st.download_button("Download CSV", to_csv(table.to_dict("records"), audit.FIELDS), file_name="audit.csv",
                       mime="text/csv")
