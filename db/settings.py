"""Install-wide settings (key/value rows) and the patient-key HMAC; the secret itself is in db/patient_secret.py."""
from __future__ import annotations

import hashlib
import hmac
from typing import Any

from sqlalchemy.orm import Session

from db.models import Setting


def get_setting(session: Session, key: str, default: Any = None) -> Any:
    row = session.get(Setting, key)
    return default if row is None else row.value


def set_setting(session: Session, key: str, value: Any) -> None:
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value


def patient_key(secret: bytes, raw_id: str | None) -> str | None:
    """HMAC-SHA256 of a patient id: stable for grouping, useless for re-identification without the secret."""
    if raw_id is None or not str(raw_id).strip():
        return None
    return hmac.new(secret, str(raw_id).strip().encode("utf-8"), hashlib.sha256).hexdigest()
