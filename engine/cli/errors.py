"""Every failure of a CLI command is one line on the console; the traceback goes to MEDSSL_HOME/logs/.

Exit 2 for bad usage (UsageError, a malformed --db URL, a patient key that does not fit the database),
1 for anything else that went wrong (an unreachable database, a full disk, a bug).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from db.config import DEFAULT_HOME
from engine.data.library_logs import append_traceback


def _usage_types() -> tuple[type[BaseException], ...]:
    from sqlalchemy.exc import ArgumentError

    from db.patient_secret import PatientKeyError

    return ArgumentError, PatientKeyError


def one_line(error: BaseException) -> str:
    """The message without the SQL statement/background links SQLAlchemy appends, on one line."""
    text = str(error).split("\n[SQL:")[0].split("\n(Background on this error")[0]
    from sqlalchemy.exc import OperationalError

    if isinstance(error, OperationalError):
        first = (str(error.orig).strip().splitlines() or [text])[0]
        return f"cannot use the database: {first}"
    return " ".join(text.split()) or type(error).__name__


def log_traceback(home: str | os.PathLike | None, error: BaseException) -> Path | None:
    """Append the traceback to logs/cli.log under the data folder; None when that folder is not writable."""
    folder = Path(home or os.environ.get("MEDSSL_HOME") or DEFAULT_HOME).expanduser() / "logs"
    return append_traceback(folder / "cli.log", error, header=" ".join(sys.argv))


def report(home: str | os.PathLike | None, error: BaseException) -> int:
    """Print the one line, keep the traceback, return the exit status."""
    path = log_traceback(home, error)
    where = f" (details: {path})" if path else ""
    print(f"error: {one_line(error)}{where}", file=sys.stderr)
    return 2 if isinstance(error, _usage_types()) else 1
