"""What a running job sees: its params, the store, and a throttled progress reporter that can stop it."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from db.jobs import report_progress
from db.store import Store


class JobCancelled(Exception):
    """The user cancelled the job; the worker marks it cancelled."""


class JobInterrupted(Exception):
    """The worker is shutting down; the job is requeued and resumes from its last checkpoint."""


@dataclass
class JobContext:
    store: Store
    job_id: int
    kind: str
    project_id: int | None
    params: dict[str, Any]
    attempt: int
    device: str | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    min_interval_s: float = 0.5
    _last_report: float = 0.0

    def report(self, progress: float | None = None, message: str | None = None,
               metrics: dict[str, Any] | None = None, force: bool = False) -> None:
        """Write progress at most every `min_interval_s`; raise if cancelled or the worker is stopping."""
        if self.stop_event.is_set():
            raise JobInterrupted("worker shutting down")
        now = time.monotonic()
        if not force and now - self._last_report < self.min_interval_s:
            return
        self._last_report = now
        with self.store.sessions.begin() as session:
            cancelled = report_progress(session, self.job_id, progress, message, metrics)
        if cancelled:
            raise JobCancelled("cancelled by user")
