"""User accounts: argon2 password hashes (argon2-cffi), roles, disabling, and throttled logins.

The CLI is the trusted local admin tool and acts for `--user` without a password; the app logs users in.
An account without a password hash exists for the CLI only and cannot log into the app.
"""
from __future__ import annotations

import getpass
import os
import unicodedata
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from db import audit
from db.enums import Role
from db.login_sessions import revoke_all
from db.models import Annotator, as_utc, utcnow
from db.roles import require
from db.upsert import insert_ignore

MIN_PASSWORD_CHARS = 8
MAX_FAILED_LOGINS = 5
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("not a password of anyone")  # unknown names cost the same time as wrong passwords


class AccountError(ValueError):
    """A user-facing refusal about accounts (unknown user, weak password, locked, disabled...)."""


def local_user_name() -> str:
    """Who sits at this machine: $MEDSSL_USER, else the OS user (the CLI's default --user, single-user mode)."""
    try:
        return os.environ.get("MEDSSL_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def lock_minutes() -> int:
    return int(os.environ.get("MEDSSL_LOGIN_LOCK_MINUTES", "15"))


def clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200 or any(unicodedata.category(c).startswith("C") for c in name):
        raise AccountError("a user name is 1 to 200 printable characters")
    return name


def check_role(role: str) -> str:
    if role not in {r.value for r in Role}:
        raise AccountError(f"unknown role {role!r}; use one of: {', '.join(r.value for r in Role)}")
    return role


def check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD_CHARS:
        raise AccountError(f"a password has at least {MIN_PASSWORD_CHARS} characters")
    return password


def find_user(session: Session, name: str) -> Annotator | None:
    return session.scalars(select(Annotator).where(Annotator.name == name.strip())).first()


def require_user(session: Session, name: str) -> Annotator:
    user = find_user(session, name)
    if user is None:
        raise AccountError(f"no user named {name!r}: add one with `python -m engine user add {name} --role ROLE`")
    if user.disabled:
        raise AccountError(f"the account {name!r} is disabled")
    return user


def ensure_user(session: Session, name: str, role: str = Role.ANNOTATOR.value) -> Annotator:
    """The named account, created if missing, as an upsert: two processes creating it at once both succeed
    (a first save under a new name once failed with an IntegrityError on PostgreSQL)."""
    name = clean_name(name)
    insert_ignore(session, Annotator, {"name": name, "role": check_role(role), "created_at": utcnow(),
                                       "disabled": False, "failed_logins": 0})
    return session.scalars(select(Annotator).where(Annotator.name == name)).one()


def login_accounts(session: Session) -> int:
    """Enabled accounts that can log into the app (have a password)."""
    return session.scalar(select(func.count()).select_from(Annotator)
                          .where(Annotator.password_hash.is_not(None), Annotator.disabled.is_(False))) or 0


def add_user(session: Session, actor: Annotator | None, name: str, role: str, password: str | None) -> Annotator:
    """A new account (admins only; `actor=None` only for the first admin of an install, see first_admin)."""
    if actor is not None:
        require(actor, "users")
    name, role = clean_name(name), check_role(role)
    if find_user(session, name) is not None:
        raise AccountError(f"a user named {name!r} already exists")
    password_hash = _HASHER.hash(check_password(password)) if password is not None else None
    user = Annotator(name=name, role=role, password_hash=password_hash, disabled=False, failed_logins=0,
                     password_changed_at=utcnow() if password_hash else None)
    session.add(user)
    session.flush()
    audit.record(session, actor or user, "user.add", target_kind="user", target_id=user.id,
                 after={"name": name, "role": role, "password": password_hash is not None})
    return user


def first_admin(session: Session, name: str, password: str) -> Annotator:
    """The install's first login account, created from the app on a loopback client; refused once one exists."""
    if login_accounts(session):
        raise AccountError("an account already exists: log in, or ask an admin")
    existing = find_user(session, name.strip())
    if existing is not None:  # a CLI-only account of the same name (e.g. the OS user): give it a password
        existing.role = Role.ADMIN.value
        existing.disabled = False
        _store_password(existing, password)
        audit.record(session, existing, "user.first_admin", target_kind="user", target_id=existing.id,
                     after={"name": existing.name, "role": existing.role})
        return existing
    user = add_user(session, None, name, Role.ADMIN.value, password)
    return user


def _store_password(user: Annotator, password: str) -> None:
    user.password_hash = _HASHER.hash(check_password(password))
    user.password_changed_at = utcnow()
    user.failed_logins = 0
    user.locked_until = None


def set_password(session: Session, actor: Annotator, user: Annotator, password: str,
                 old_password: str | None = None, trusted: bool = False) -> None:
    """Own password (with the old one, unless `trusted`: the local CLI) or anyone's as admin."""
    if actor.id == user.id and actor.password_hash is not None and not trusted:
        if old_password is None or not _verify(user.password_hash, old_password):
            raise AccountError("the current password is wrong")
    elif actor.id != user.id:
        require(actor, "users")
    _store_password(user, password)
    session.flush()
    revoke_all(session, user.id)
    audit.record(session, actor, "user.password", target_kind="user", target_id=user.id)


def set_disabled(session: Session, actor: Annotator, user: Annotator, disabled: bool = True) -> None:
    require(actor, "users")
    if disabled and user.id == actor.id:
        raise AccountError("you cannot disable your own account")
    before = user.disabled
    user.disabled = disabled
    session.flush()
    if disabled:
        revoke_all(session, user.id)
    audit.record(session, actor, "user.disable" if disabled else "user.enable", target_kind="user",
                 target_id=user.id, before={"disabled": before}, after={"disabled": disabled})


def set_role(session: Session, actor: Annotator, user: Annotator, role: str) -> None:
    require(actor, "users")
    before = user.role
    user.role = check_role(role)
    session.flush()
    audit.record(session, actor, "user.role", target_kind="user", target_id=user.id,
                 before={"role": before}, after={"role": role})


def list_users(session: Session) -> list[Annotator]:
    return list(session.scalars(select(Annotator).order_by(Annotator.name)))


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def authenticate(session: Session, name: str, password: str, now: datetime | None = None) -> Annotator:
    """The account for a correct name + password; otherwise AccountError with one message for a wrong name or a
    wrong password (no user enumeration), after MAX_FAILED_LOGINS failures the account locks for a while."""
    now = now or utcnow()
    user = find_user(session, name or "")
    if user is not None and user.locked_until is not None and as_utc(user.locked_until) > now:
        minutes = max(1, int((as_utc(user.locked_until) - now).total_seconds() // 60) + 1)
        raise AccountError(f"too many failed logins: try again in {minutes} min, or ask an admin")
    ok = _verify(user.password_hash if user else None, password or "")
    if user is None or not ok:
        if user is not None:
            failed = (user.failed_logins or 0) + 1
            locked = now + timedelta(minutes=lock_minutes()) if failed >= MAX_FAILED_LOGINS else None
            session.execute(update(Annotator).where(Annotator.id == user.id)
                            .values(failed_logins=0 if locked else failed, locked_until=locked))
            audit.record(session, user, "user.login_failed", target_kind="user", target_id=user.id,
                         after={"locked": locked is not None})
        raise AccountError("wrong user name or password")
    if user.disabled:
        raise AccountError(f"the account {user.name!r} is disabled")
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = _HASHER.hash(password)
    audit.record(session, user, "user.login", target_kind="user", target_id=user.id)
    return user
