"""`python -m engine worker`: claim jobs from the database queue and run them, forever or once.

A background thread beats the worker row (and the running job) every 2 s so a long epoch or UMAP never
looks dead. SIGTERM/SIGINT stop gracefully: the running job is requeued and resumes from its checkpoint.
A job that raises is marked failed with its traceback and the worker keeps serving.
"""
from __future__ import annotations

import errno
import logging
import os
import signal
import threading
import time
import traceback

from db.config import sqlite_file
from db.enums import JobStatus
from db.jobs import beat_worker, claim_next, finish, register_worker, requeue, requeue_stale, stop_worker
from db.models import Job
from db.retrain import maybe_enqueue_retrain
from db.store import Store
from engine.data.library_logs import append_traceback
from engine.jobs import load_handlers
from engine.jobs.context import JobCancelled, JobContext, JobInterrupted
from engine.jobs.housekeeping import tidy

log = logging.getLogger("medssl.worker")
HEARTBEAT_S = 2.0


class Worker:
    def __init__(self, store: Store, device: str | None = None, kinds: list[str] | None = None):
        self.store, self.device, self.kinds = store, device, kinds
        self.stop_event = threading.Event()
        self.handlers = load_handlers()
        tidy(store)
        self.database_file = sqlite_file(store.config.db_url)
        with store.sessions.begin() as session:
            self.worker_id = register_worker(session, device).id
        self._beat_thread = threading.Thread(target=self._beat, name="medssl-heartbeat", daemon=True)
        self._beat_thread.start()
        self.current_job: int | None = None
        self.database_lost = False
        if "analyze" in self.handlers and os.environ.get("MEDSSL_WARM_UMAP", "1") != "0":
            threading.Thread(target=_warm_umap, name="medssl-umap-warmup", daemon=True).start()

    def _beat(self) -> None:
        from db.jobs import report_progress

        while not self.stop_event.wait(HEARTBEAT_S):
            if self.database_file is not None and not self.database_file.exists():
                log.error("the database file %s vanished: stopping (a new empty one would silently take its "
                          "place)", self.database_file)
                self.database_lost = True
                self.stop_event.set()
                return
            try:
                with self.store.sessions.begin() as session:
                    beat_worker(session, self.worker_id)
                    if self.current_job is not None:
                        report_progress(session, self.current_job)
            except Exception:  # a transient database error must not kill the heartbeat
                log.exception("heartbeat failed")

    def run_once(self, job_id: int | None = None) -> bool:
        """Claim and run at most one job (the oldest, or exactly `job_id`); True when one ran."""
        ctx = self.claim(job_id)
        if ctx is None:
            return False
        self.run_job(ctx)
        return True

    def claim(self, job_id: int | None = None) -> JobContext | None:
        """Requeue stale jobs, then claim the oldest queued job (or exactly `job_id`); None when none."""
        with self.store.sessions.begin() as session:
            for stale_id in requeue_stale(session):
                log.info("requeued stale job %s", stale_id)
            job = claim_next(session, self.worker_id, self.kinds, job_id=job_id)
            if job is None and job_id is None:
                for retrain_id in maybe_enqueue_retrain(session):
                    log.info("auto-retrain: enqueued train job %s", retrain_id)
            if job is None:
                return None
            return JobContext(store=self.store, job_id=job.id, kind=job.kind, project_id=job.project_id,
                              params=dict(job.params), attempt=job.attempts, device=self.device,
                              stop_event=self.stop_event)

    def run_job(self, ctx: JobContext) -> None:
        """Run a claimed job and record how it ended (done, failed, cancelled, or requeued on shutdown)."""
        self.current_job = ctx.job_id
        log.info("job %s (%s) attempt %s started", ctx.job_id, ctx.kind, ctx.attempt)
        status, message, error = JobStatus.DONE.value, None, None
        try:
            handler = self.handlers.get(ctx.kind)
            if handler is None:
                raise ValueError(f"no handler for job kind {ctx.kind!r}")
            message = handler(ctx)
        except JobCancelled:
            status, message = JobStatus.CANCELLED.value, "cancelled"
        except JobInterrupted:
            with self.store.sessions.begin() as session:
                requeue(session, ctx.job_id, "requeued: worker stopped; resumes from last checkpoint")
            self.current_job = None
            return
        except Exception as exc:  # noqa: BLE001 -- any job error fails the job, never the worker
            status, error = JobStatus.FAILED.value, traceback.format_exc()
            # the whole traceback in logs/job-<id>.log; the job row and the page keep the one-line cause
            where = append_traceback(self.store.config.logs_dir / f"job-{ctx.job_id}.log", error)
            message = f"failed: {_reason(exc)}" + (f" (traceback: logs/{where.name})" if where else "")
            log.error("job %s failed: %s", ctx.job_id, exc)
        self._finish(ctx.job_id, status, message, error)
        self.current_job = None
        log.info("job %s %s", ctx.job_id, status)

    def _finish(self, job_id: int, status: str, message: str | None, error: str | None) -> None:
        """Record the end, retrying while the database cannot be written (a full disk): a job left
        `running` by a live worker would never be requeued."""
        delay = 1.0
        while True:
            try:
                with self.store.sessions.begin() as session:
                    finish(session, job_id, status, message=message, error=error)
                return
            except Exception:  # OperationalError (disk full, lock), connection loss
                if self.stop_event.is_set():
                    raise
                log.exception("cannot record the end of job %s yet; retrying in %.0f s", job_id, delay)
                self.stop_event.wait(delay)
                delay = min(delay * 2, 30.0)

    def serve(self, once: bool = False, max_idle_s: float = 5.0) -> None:
        """Run jobs until stopped; poll with exponential back-off while the queue is empty."""
        idle = 0.2
        while not self.stop_event.is_set():
            try:
                ran = self.run_once()
            except Exception:  # a database hiccup (disk full, restart) must not end the worker
                log.exception("claiming a job failed; retrying")
                ran = False
            if ran:
                idle = 0.2
                continue
            if once:
                break
            self.stop_event.wait(idle)
            idle = min(idle * 2, max_idle_s)

    def close(self) -> None:
        self.stop_event.set()
        with self.store.sessions.begin() as session:
            stop_worker(session, self.worker_id)


def _reason(exc: BaseException) -> str:
    """The failure in words; a full disk says so and what to do."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"disk full ({exc.strerror}{': ' + exc.filename if exc.filename else ''}); free space and retry the job"
    return str(exc) or type(exc).__name__


def _warm_umap() -> None:
    """UMAP's first fit in a process pays numba compilation (~1 min); do it before analyses need it."""
    try:
        from engine.analysis.projection import warm_up

        warm_up()
        log.info("UMAP warm-up done")
    except Exception:
        log.exception("UMAP warm-up failed")


def install_signal_handlers(worker: Worker) -> None:
    def stop(signum, _frame) -> None:
        log.info("signal %s: stopping after checkpointing the current job", signum)
        worker.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def wait_for_job(store: Store, job_id: int, poll_s: float = 0.5) -> Job:
    """Block until a job reaches a final state (used by `--wait`)."""
    while True:
        with store.sessions.begin() as session:
            job = session.get(Job, job_id)
            if job.status in (JobStatus.DONE.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value):
                return job
        time.sleep(poll_s)
