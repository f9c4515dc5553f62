"""Start-of-worker housekeeping: temp files and image files that a killed process left behind.

Every write in MEDSSL_HOME goes through a temp file and an atomic rename (checkpoints `.last.pt.*.tmp`,
caches `*.npy.tmpPID`, originals `.<name>.<uuid>.tmp`), so a SIGKILL can leave only those temps, plus the
image files of an import batch whose transaction never committed (files are written before the commit).
Only files older than a grace period go: an import or job running right now is never touched.
"""
from __future__ import annotations

import logging
import re
import time
from pathlib import Path

from sqlalchemy import select

from db.models import Image
from db.store import Store

log = logging.getLogger("medssl.housekeeping")
TEMP_NAME = re.compile(r"(^\..+\.tmp$)|(\.tmp\d*$)|(\.npy\.tmp\d+$)")
GRACE_S = 3600.0  # an import batch or a job writing right now is far younger than this


def _old(path: Path, now: float, grace_s: float) -> bool:
    try:
        return now - path.stat().st_mtime > grace_s
    except OSError:
        return False


def clean_temp_files(home: Path, grace_s: float = GRACE_S) -> list[Path]:
    """Delete abandoned temp files under checkpoints/, cache/, images/, masks/ and exports/."""
    now, removed = time.time(), []
    for folder in ("checkpoints", "cache", "images", "masks", "exports"):
        for path in (Path(home) / folder).rglob("*"):
            if path.is_file() and TEMP_NAME.search(path.name) and _old(path, now, grace_s):
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def clean_orphan_images(store: Store, grace_s: float = GRACE_S) -> list[Path]:
    """Delete images/p<project>/<id>.* files whose image row does not exist (an import killed before commit)."""
    root = store.config.images_dir
    now, removed = time.time(), []
    with store.sessions.begin() as session:
        known = set(session.scalars(select(Image.id)))
    for path in root.glob("p*/*"):
        stem = path.name.split(".", 1)[0]
        if path.is_file() and stem.isdigit() and int(stem) not in known and _old(path, now, grace_s):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def tidy(store: Store, grace_s: float = GRACE_S) -> int:
    """Both cleanups, logged; never fails the worker start."""
    try:
        removed = clean_temp_files(store.config.home, grace_s) + clean_orphan_images(store, grace_s)
    except Exception:  # housekeeping must never stop a worker from serving
        log.exception("housekeeping failed")
        return 0
    if removed:
        log.info("housekeeping removed %d abandoned files: %s", len(removed), [p.name for p in removed[:10]])
    return len(removed)
