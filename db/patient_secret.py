"""The secret that turns patient ids into keys lives outside the database it protects.

With the secret in the same database as the keys, 1,000,000 candidate MRNs were checked against the keys in
3.9 s from the database file alone. So the secret is MEDSSL_PATIENT_KEY, else the key file
`MEDSSL_HOME/patient.key` (created 0600 on first use). The database keeps only a fingerprint of it
(HMAC of a fixed message), which tells a wrong key from the right one without revealing either, so a
second install sharing a PostgreSQL database refuses to import with a different key instead of silently
splitting one patient into two groups. Old installs kept the secret in the `setting` table: opening the
store moves it to the key file and deletes the row (the migration).
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
from pathlib import Path

from sqlalchemy.orm import Session

from db.models import Setting

log = logging.getLogger("medssl.patient_key")
ENV = "MEDSSL_PATIENT_KEY"
KEY_FILE = "patient.key"
LEGACY_SETTING = "patient_key_secret"  # where installs before issue 12 kept the secret
CHECK_SETTING = "patient_key_check"
_CHECK_MESSAGE = b"medssl patient key check v1"


class PatientKeyError(RuntimeError):
    """The configured secret is not the one this database's patient keys were made with."""


def key_path(home: Path) -> Path:
    return Path(home) / KEY_FILE


def fingerprint(secret: bytes) -> str:
    return hmac.new(secret, _CHECK_MESSAGE, hashlib.sha256).hexdigest()


def _from_env() -> bytes | None:
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return None
    if len(raw) < 32:
        raise PatientKeyError(f"{ENV} is too short: use at least 32 characters (e.g. `openssl rand -hex 32`)")
    try:
        return bytes.fromhex(raw)
    except ValueError:
        return raw.encode("utf-8")


def _read_file(path: Path) -> bytes | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o); set to 0600", path, mode)
        path.chmod(0o600)
    return bytes.fromhex(text)


def _create_file(path: Path, secret: bytes) -> bytes:
    """Write once (O_EXCL); when another process won the race, its key is the key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_file(path) or secret
    with os.fdopen(fd, "w") as fh:
        fh.write(secret.hex() + "\n")
    return secret


def patient_key_secret(session: Session, home: Path) -> bytes:
    """The install's secret (env, key file, or moved from a legacy row), checked against the database."""
    legacy_row = session.get(Setting, LEGACY_SETTING)
    legacy = bytes.fromhex(legacy_row.value) if legacy_row is not None else None
    secret = _from_env() or _read_file(key_path(home))
    if secret is None:
        secret = _create_file(key_path(home), legacy or secrets.token_bytes(32))
    if legacy is not None and legacy != secret:
        raise PatientKeyError(f"the patient key ({ENV} or {key_path(home)}) differs from the one this database's "
                              "patient keys were made with; nothing was changed")
    check = session.get(Setting, CHECK_SETTING)
    if check is None:
        session.add(Setting(key=CHECK_SETTING, value=fingerprint(secret)))
    elif check.value != fingerprint(secret):
        raise PatientKeyError(f"the patient key ({ENV} or {key_path(home)}) is not the one this database's patient "
                              f"keys were made with: copy {KEY_FILE} from the first install or set {ENV}")
    if legacy_row is not None:
        session.delete(legacy_row)
        log.info("moved the patient-key secret out of the database into %s", key_path(home))
    session.flush()
    return secret


def migrate_legacy_secret(sessions, home: Path) -> None:
    """At store open: an old install's secret row leaves the database (skipped when home is read-only)."""
    with sessions.begin() as session:
        if session.get(Setting, LEGACY_SETTING) is None:
            return
        try:
            patient_key_secret(session, home)
        except OSError as error:
            log.warning("patient-key secret still in the database: cannot write %s (%s)", key_path(home), error)
            session.rollback()
