"""Start a background worker when none is alive, so a new user needs nothing but the app (CONTRACTS §7)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from db.status import alive_workers
from db.store import Store

REPO_ROOT = Path(__file__).resolve().parents[1]
_started: list[subprocess.Popen] = []


def autostart_enabled() -> bool:
    return os.environ.get("MEDSSL_AUTOSTART_WORKER", "1") != "0"


def ensure_worker(store: Store) -> str:
    """Returns a one-line status for the sidebar; spawns `python -m engine worker` at most once per process."""
    with store.sessions.begin() as session:
        alive = alive_workers(session)
    if alive:
        return f"worker: {alive} alive"
    if _started and _started[-1].poll() is None:
        return "worker: starting…"
    if not autostart_enabled():
        return "worker: none alive — run `python -m engine worker`"
    log = open(store.config.logs_dir / "app-started-worker.out", "ab")  # noqa: SIM115 -- owned by the child
    env = {**os.environ, "MEDSSL_HOME": str(store.config.home), "MEDSSL_DB": store.config.db_url}
    _started.append(subprocess.Popen([sys.executable, "-m", "engine", "worker"], cwd=REPO_ROOT, env=env,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    return "worker: starting…"
