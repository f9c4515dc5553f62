"""Who is using the app: login, logout, session expiry, the first admin, and the single-user mode.

The session keeps only the user's id and two times; the role is read from the database on every use, so a
disabled account or a changed role takes effect at the next click. Passwords are checked by db.users
(argon2); the database throttles an account after repeated failures and this session slows its own retries.
`MEDSSL_AUTH=off` (no login, one local admin) is honoured only when the server listens on loopback.
"""
from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone

import streamlit as st

from app import state
from app.resources import get_store
from app.text import md
from db.leases import release_all
from db.login_sessions import issue, resolve, revoke
from db.models import Annotator
from db.users import AccountError, authenticate, ensure_user, first_admin, login_accounts

USER_ID = "auth.user_id"
LOGIN_AT = "auth.login_at"
SEEN_AT = "auth.seen_at"
FAILED = "auth.failed"
NOTICE = "auth.notice"
TOKEN = "auth.token"               # this browser's login token (also in the cookie)
COOKIE_PENDING = "auth.cookie"     # a cookie to write (token) or clear ("") on the next run
COOKIE = "medssl_session"


def idle_limit() -> timedelta:
    return timedelta(minutes=float(os.environ.get("MEDSSL_SESSION_IDLE_MINUTES", "60")))


def session_limit() -> timedelta:
    return timedelta(hours=float(os.environ.get("MEDSSL_SESSION_HOURS", "12")))


def server_on_loopback() -> bool:
    from app.exposure import is_loopback

    return is_loopback(st.get_option("server.address"))


def client_on_loopback() -> bool:
    """The browser connects from this machine, not through a proxy (a proxy on this host would look local)."""
    headers = st.context.headers or {}
    forwarded = any(headers.get(h) for h in ("X-Forwarded-For", "X-Real-Ip", "Forwarded"))
    return st.context.ip_address is None and not forwarded


def single_user_requested() -> bool:
    return os.environ.get("MEDSSL_AUTH", "on").strip().lower() in {"off", "0", "false", "no"}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def current_user_id() -> int | None:
    """The logged-in user's id, or None. A new browser session (reload, link) is logged in again by its
    cookie token while the token is valid (db/login_sessions.py decides: idle, absolute age, revoked)."""
    user_id = state.get(USER_ID)
    if user_id is None:
        return _from_cookie()
    now = _now()
    if now - state.get(SEEN_AT, now) > idle_limit() or now - state.get(LOGIN_AT, now) > session_limit():
        logout(notice="Your session expired: log in again.")
        return None
    state.put(SEEN_AT, now)
    return user_id


def _from_cookie() -> int | None:
    token = (st.context.cookies or {}).get(COOKIE)
    if not token or state.get(COOKIE_PENDING) == "":
        return None
    with get_store().sessions.begin() as session:
        user = resolve(session, token, idle_limit(), session_limit())
        if user is not None:
            session.expunge(user)
    if user is None:
        return None
    _log_in(user, token)
    return user.id


def write_cookie() -> None:
    """Set or clear the login cookie in this browser (a script in the page; the token is URL-safe base64).
    SameSite=Strict keeps other sites from sending it; Secure when the app is served over HTTPS."""
    pending = state.get(COOKIE_PENDING)
    if pending is None:
        return
    age = int(session_limit().total_seconds()) if pending else 0
    st.html(f"<script>document.cookie = '{COOKIE}={pending}; path=/; max-age={age}; SameSite=Strict'"
            " + (location.protocol === 'https:' ? '; Secure' : '');</script>", unsafe_allow_javascript=True)
    state.drop(COOKIE_PENDING)


def acting_user(session) -> Annotator | None:
    """The logged-in account as a row of this session (role and disabled flag as stored now)."""
    user_id = current_user_id()
    if user_id is None and single_user_requested() and server_on_loopback():
        return ensure_user(session, _single_user_name(), role="admin")
    user = session.get(Annotator, user_id) if user_id is not None else None
    if user is not None and user.disabled:
        logout(notice="This account was disabled.")
        return None
    return user


def acting_account() -> Annotator | None:
    """acting_user, detached from its session: for work that opens its own transactions (imports, exports,
    write-back) and takes the account's id, name and role with it."""
    with get_store().sessions.begin() as session:
        user = acting_user(session)
        if user is not None:
            session.expunge(user)
    return user


def _log_in(user: Annotator, token: str | None = None) -> None:
    """Remember the user in this session; a fresh login gets a new token (and its cookie) here."""
    if token is None:
        with get_store().sessions.begin() as session:
            token = issue(session, session.get(Annotator, user.id))
        state.put(COOKIE_PENDING, token)
    state.put(TOKEN, token)
    now = _now()
    state.put(USER_ID, user.id)
    state.put(LOGIN_AT, now)
    state.put(SEEN_AT, now)
    state.put(state.ANNOTATOR, user.name)
    state.drop(FAILED)


def logout(notice: str | None = None) -> None:
    user_id = state.get(USER_ID)
    if user_id is not None:
        with get_store().sessions.begin() as session:
            release_all(session, user_id)   # open leases go back to the queue
            revoke(session, state.get(TOKEN))
    for key in (USER_ID, LOGIN_AT, SEEN_AT, TOKEN, state.CURRENT_IMAGE, state.ANNOTATOR):
        state.drop(key)
    state.put(COOKIE_PENDING, "")
    if notice:
        state.put(NOTICE, notice)


def _single_user_name() -> str:
    """$MEDSSL_USER or the OS user (a page run on its own, as in the view tests, may have set the name)."""
    return state.get(state.ANNOTATOR) or state.default_annotator()


def single_user() -> Annotator:
    """MEDSSL_AUTH=off: every action as the local user ($MEDSSL_USER or the OS user), an admin."""
    with get_store().sessions.begin() as session:
        user = ensure_user(session, _single_user_name(), role="admin")
        session.expunge(user)
    if state.get(USER_ID) != user.id:
        _log_in(user, token="")   # no login, no cookie
    return user


def _login_form() -> None:
    with st.form("login"):
        name = st.text_input("user name", autocomplete="username")
        password = st.text_input("password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Log in", type="primary")
    if not submitted:
        return
    failed = state.get(FAILED, 0)
    if failed >= 3:   # this browser session slows its own guessing; the database locks the account at 5
        time.sleep(min(2 ** (failed - 2), 8))
    with get_store().sessions.begin() as session:
        try:   # caught inside the transaction, so the failure counter and its audit row are committed
            user = authenticate(session, name, password)
            session.expunge(user)
        except AccountError as error:
            user, problem = None, error
    if user is None:
        state.put(FAILED, failed + 1)
        st.error(md(problem))
        return
    _log_in(user)
    st.rerun()


def _first_admin_form() -> None:
    st.info("No account exists yet. Create the first admin account (only offered to a browser on this machine).")
    with st.form("first_admin"):
        name = st.text_input("admin user name", value=state.default_annotator(), autocomplete="username")
        password = st.text_input("password", type="password", autocomplete="new-password")
        again = st.text_input("password again", type="password", autocomplete="new-password")
        submitted = st.form_submit_button("Create admin account", type="primary")
    if not submitted:
        return
    if password != again:
        st.error("The two passwords differ.")
        return
    try:
        with get_store().sessions.begin() as session:
            user = first_admin(session, name, password)
            session.expunge(user)
    except AccountError as error:
        st.error(md(error))
        return
    _log_in(user)
    st.rerun()


CLI_HINT = ("No account exists yet. On the server, create one with\n\n"
            "`python -m engine user add NAME --role admin`\n\nthen log in here.")


def login_page() -> None:
    """Everything a visitor who is not logged in may see: never data."""
    write_cookie()
    st.title("MedSSL Studio")
    st.caption("Research use only — not for clinical diagnosis.")
    if notice := state.get(NOTICE):
        st.warning(notice)
        state.drop(NOTICE)
    with get_store().sessions.begin() as session:
        accounts = login_accounts(session)
    if accounts:
        _login_form()
    elif client_on_loopback():
        _first_admin_form()
    else:
        st.info(CLI_HINT)


def require_login() -> Annotator | None:
    """The acting user for this run, or None after drawing the login page (the caller stops)."""
    if single_user_requested():
        if server_on_loopback():
            return single_user()
        st.error("MEDSSL_AUTH=off is honoured only when the app listens on loopback (server.address = "
                 "localhost); unset it, or bind to localhost.")
        return None
    with get_store().sessions.begin() as session:
        user = acting_user(session)
        if user is not None:
            session.expunge(user)
    if user is None:
        login_page()
    return user


def account_sidebar(user: Annotator) -> None:
    """Who is logged in, logout, and the password change (not in single-user mode)."""
    write_cookie()
    if single_user_requested():
        st.sidebar.caption(f"Single-user mode (MEDSSL_AUTH=off): no login; acting as {md(user.name)} (admin).")
        return
    st.sidebar.caption(f"Logged in as **{md(user.name)}** · {md(user.role)}")
    if st.sidebar.button("Log out", key="auth.logout"):
        logout(notice="You are logged out.")
        st.rerun()
    with st.sidebar.expander("change password"), st.form("password_change", clear_on_submit=True):
        old = st.text_input("current password", type="password", autocomplete="current-password")
        new = st.text_input("new password", type="password", autocomplete="new-password")
        again = st.text_input("new password again", type="password", autocomplete="new-password")
        if st.form_submit_button("Change password"):
            _change_password(user.id, old, new, again)


def _change_password(user_id: int, old: str, new: str, again: str) -> None:
    from db.users import set_password

    if new != again:
        st.error("The two new passwords differ.")
        return
    try:
        with get_store().sessions.begin() as session:
            user = session.get(Annotator, user_id)
            set_password(session, user, user, new, old_password=old)   # logs out every other browser
            token = issue(session, user)
    except AccountError as error:
        st.error(md(error))
        return
    state.put(TOKEN, token)
    state.put(COOKIE_PENDING, token)
    st.success("Password changed; other browsers of this account are logged out.")
