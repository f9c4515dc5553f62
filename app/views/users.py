"""Users page (admins): accounts, roles, disabling, password resets. Every change is audited (db/users.py)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app.auth import acting_user
from app.resources import get_store
from app.text import md
from db.enums import Role
from db.roles import PermissionDenied
from db.users import AccountError, add_user, find_user, list_users, set_disabled, set_password, set_role

ROLES = [r.value for r in Role]


def _add_form() -> None:
    with st.form("user_add", clear_on_submit=True):
        cols = st.columns([2, 1, 2])
        name = cols[0].text_input("user name")
        role = cols[1].selectbox("role", ROLES, index=ROLES.index("annotator"))
        password = cols[2].text_input("initial password", type="password", autocomplete="new-password")
        if st.form_submit_button("Add user", type="primary"):
            try:
                with get_store().sessions.begin() as session:
                    add_user(session, acting_user(session), name, role, password)
            except (AccountError, PermissionDenied) as error:
                st.error(f"Not added: {md(error)}")
                return
            st.toast(f"added {md(name)} as {role}")


def _change_form(names: list[str]) -> None:
    with st.form("user_change"):
        cols = st.columns([2, 1, 2, 1])
        name = cols[0].selectbox("user", names)
        role = cols[1].selectbox("new role", ["(keep)", *ROLES])
        password = cols[2].text_input("new password (empty: keep)", type="password", autocomplete="new-password")
        enabled = cols[3].selectbox("account", ["(keep)", "enable", "disable"])
        if st.form_submit_button("Apply"):
            try:
                with get_store().sessions.begin() as session:
                    actor, user = acting_user(session), find_user(session, name)
                    if role != "(keep)":
                        set_role(session, actor, user, role)
                    if password:
                        set_password(session, actor, user, password)
                    if enabled != "(keep)":
                        set_disabled(session, actor, user, enabled == "disable")
            except (AccountError, PermissionDenied) as error:
                st.error(f"Not changed: {md(error)}")
                return
            st.toast(f"changed {md(name)}")


def render() -> None:
    st.title("Users")
    with get_store().sessions.begin() as session:
        users = list_users(session)
        table = pd.DataFrame([{"name": u.name, "role": u.role, "disabled": u.disabled,
                               "can log in": u.password_hash is not None,
                               "last login": u.last_login_at} for u in users])
    st.dataframe(table, hide_index=True, width="stretch")
    _add_form()
    if users:
        _change_form([u.name for u in users])
    st.caption("Accounts without a password exist for the command line only (`python -m engine … --user NAME`).")
