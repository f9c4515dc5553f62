"""The queue is a table: enqueue, atomic claim, heartbeat/progress, cancel, finish, stale requeue.

`claim_next` is a single UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING: atomic on
SQLite (one writer at a time) and on PostgreSQL (row locks, skipping rows another worker holds).
"""
from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.enums import JobKind, JobStatus
from db.models import Job, Worker, utcnow
from db.status import stale_seconds

FINISHED = (JobStatus.DONE.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value)


def enqueue(session: Session, kind: str, params: dict[str, Any], project_id: int | None = None,
            created_by: int | None = None, max_attempts: int = 3, dedupe: bool = False,
            actor: Any = None) -> Job:
    """Add a job; with `dedupe`, an identical job still waiting in the queue is returned instead.

    With an `actor` (the logged-in user, the CLI's --user) the role is checked here and the job carries them;
    without one the caller is the system itself (auto-retrain after N labels, a job's follow-up analysis).
    """
    from db import audit
    from db.roles import require

    if actor is not None:
        require(actor, "export" if kind == JobKind.EXPORT.value else "train")
        created_by = actor.id
    if dedupe:
        for waiting in session.scalars(select(Job).where(Job.kind == kind, Job.project_id == project_id,
                                                         Job.status == JobStatus.QUEUED.value)):
            if waiting.params == params:
                return waiting
    job = Job(kind=kind, params=params, project_id=project_id, created_by=created_by,
              max_attempts=max_attempts, status=JobStatus.QUEUED.value, progress=0.0, metrics={})
    session.add(job)
    session.flush()
    audit.record(session, actor, "job.enqueue", project_id=project_id, target_kind="job", target_id=job.id,
                 after={"kind": kind, "method": params.get("method"), "backbone": params.get("backbone"),
                        "created_by": created_by})
    return job


def claim_next(session: Session, worker_id: int, kinds: list[str] | None = None,
               job_id: int | None = None) -> Job | None:
    """Take the oldest queued job (or exactly `job_id`) for this worker, or None. Commit to publish it."""
    candidate = select(Job.id).where(Job.status == JobStatus.QUEUED.value)
    if job_id is not None:
        candidate = candidate.where(Job.id == job_id)
    if kinds:
        candidate = candidate.where(Job.kind.in_(kinds))
    candidate = candidate.order_by(Job.id).limit(1).with_for_update(skip_locked=True).scalar_subquery()
    now = utcnow()
    claimed = session.execute(
        update(Job).where(Job.id == candidate, Job.status == JobStatus.QUEUED.value)
        .values(status=JobStatus.RUNNING.value, worker_id=worker_id, attempts=Job.attempts + 1,
                started_at=now, heartbeat_at=now, message="started", error=None)
        .returning(Job.id)).scalar()
    return session.get(Job, claimed, populate_existing=True) if claimed is not None else None


def report_progress(session: Session, job_id: int, progress: float | None = None, message: str | None = None,
                    metrics: dict[str, Any] | None = None) -> bool:
    """Heartbeat + progress; returns True when a cancel was requested (the job stops at its next step)."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if progress is not None:
        values["progress"] = float(min(max(progress, 0.0), 1.0))
    if message is not None:
        values["message"] = message
    if metrics is not None:
        values["metrics"] = metrics
    session.execute(update(Job).where(Job.id == job_id).values(**values))
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def finish(session: Session, job_id: int, status: str, message: str | None = None,
           error: str | None = None) -> None:
    values: dict[str, Any] = {"status": status, "finished_at": utcnow(), "heartbeat_at": utcnow(),
                              "error": error}
    if status == JobStatus.DONE.value:
        values["progress"] = 1.0
    if message is not None:
        values["message"] = message
    session.execute(update(Job).where(Job.id == job_id).values(**values))


def requeue(session: Session, job_id: int, message: str) -> None:
    """Put a running job back (graceful shutdown); it resumes from its last checkpoint. Attempts count worker
    deaths, so this start is not counted."""
    session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING.value)
                    .values(status=JobStatus.QUEUED.value, worker_id=None, message=message,
                            attempts=Job.attempts - 1))


def retry(session: Session, job_id: int) -> Job:
    """A failed or cancelled job goes back to the queue with fresh attempts; a train job resumes from its
    last.pt, so a job that failed after its workers died keeps its progress."""
    job = session.get(Job, job_id)
    if job is None:
        raise ValueError(f"no job {job_id}")
    if job.status not in (JobStatus.FAILED.value, JobStatus.CANCELLED.value):
        raise ValueError(f"job {job_id} is {job.status}: only failed or cancelled jobs are retried")
    job.status, job.attempts, job.worker_id, job.cancel_requested = JobStatus.QUEUED.value, 0, None, False
    job.error, job.finished_at, job.message = None, None, "retried: resumes from its last checkpoint"
    session.flush()
    return job


def request_cancel(session: Session, job_id: int, actor: Any = None) -> str:
    """Queued jobs are cancelled at once; running ones are flagged and stop at their next step. A user's
    cancel (`actor`) is role-checked and audited."""
    job = session.get(Job, job_id)
    if job is None:
        raise ValueError(f"no job {job_id}")
    if actor is not None:
        from db import audit
        from db.roles import require

        require(actor, "train")
        audit.record(session, actor, "job.cancel", project_id=job.project_id, target_kind="job", target_id=job_id)
    if job.status == JobStatus.QUEUED.value:
        finish(session, job_id, JobStatus.CANCELLED.value, message="cancelled before start")
    elif job.status == JobStatus.RUNNING.value:
        job.cancel_requested = True
    return session.get(Job, job_id, populate_existing=True).status


def register_worker(session: Session, device: str | None = None) -> Worker:
    worker = Worker(host=socket.gethostname(), pid=os.getpid(), device=device)
    session.add(worker)
    session.flush()
    return worker


def beat_worker(session: Session, worker_id: int) -> None:
    session.execute(update(Worker).where(Worker.id == worker_id).values(heartbeat_at=utcnow()))


def stop_worker(session: Session, worker_id: int) -> None:
    session.execute(update(Worker).where(Worker.id == worker_id).values(stopped_at=utcnow()))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _worker_dead(worker: Worker | None, cutoff: datetime) -> bool:
    if worker is None or worker.stopped_at is not None:
        return True
    heartbeat = worker.heartbeat_at if worker.heartbeat_at.tzinfo else worker.heartbeat_at.replace(
        tzinfo=timezone.utc)
    if heartbeat < cutoff:
        return True
    return worker.host == socket.gethostname() and not _pid_alive(worker.pid)


def requeue_stale(session: Session) -> list[int]:
    """Running jobs whose worker is gone go back to the queue (or fail after max_attempts)."""
    cutoff = utcnow() - timedelta(seconds=stale_seconds())
    requeued = []
    running = session.scalars(select(Job).where(Job.status == JobStatus.RUNNING.value).with_for_update(
        skip_locked=True)).all()
    for job in running:
        if not _worker_dead(session.get(Worker, job.worker_id) if job.worker_id else None, cutoff):
            continue
        if job.attempts >= job.max_attempts:
            finish(session, job.id, JobStatus.FAILED.value,
                   message=f"failed: worker died {job.attempts} times; `python -m engine retry --job {job.id}` "
                           "resumes it from its last checkpoint",
                   error=f"worker died {job.attempts} times while running this job")
        else:
            job.status, job.worker_id = JobStatus.QUEUED.value, None
            job.message = f"requeued after worker loss (attempt {job.attempts})"
            requeued.append(job.id)
    return requeued


def job_dict(job: Job) -> dict[str, Any]:
    """The `jobs --json` shape (CONTRACTS §5)."""
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {"id": job.id, "kind": job.kind, "status": job.status, "progress": job.progress,
            "attempts": job.attempts, "message": job.message, "created_at": iso(job.created_at),
            "started_at": iso(job.started_at), "finished_at": iso(job.finished_at), "error": job.error,
            "project_id": job.project_id, "params": job.params, "metrics": job.metrics}
