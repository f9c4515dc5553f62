"""worker, jobs, cancel: the background queue from the command line."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from sqlalchemy import select

from db.jobs import job_dict, request_cancel
from db.models import Job
from engine.cli.common import UsageError, acting_user, project_or_usage_error, store_from_args


def register(subparsers, parents) -> None:
    p = subparsers.add_parser("worker", parents=parents, help="run queued jobs (train, analyze, ...)")
    p.add_argument("--once", action="store_true", help="run the queued jobs, then exit when idle")
    p.add_argument("--device", choices=["cuda", "cpu"], help="default: CUDA when present")
    p.add_argument("--nice", type=int, default=10,
                   help="lower the worker's OS priority by this much, so the app stays responsive while it trains "
                        "on every core (0: unchanged)")
    p.set_defaults(handler=cmd_worker)

    p = subparsers.add_parser("run-job", parents=parents,
                              help="run one queued job in this process (the unit torchrun wraps for multi-GPU)")
    p.add_argument("job_id", type=int)
    p.add_argument("--device", choices=["cuda", "cpu"], help="default: CUDA when present")
    p.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)  # set by a worker's torchrun launch
    p.set_defaults(handler=cmd_run_job)

    p = subparsers.add_parser("jobs", parents=parents, help="list a project's jobs")
    p.add_argument("--project", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_jobs)

    p = subparsers.add_parser("cancel", parents=parents, help="cancel a queued or running job")
    p.add_argument("--job", type=int, required=True)
    p.set_defaults(handler=cmd_cancel)

    p = subparsers.add_parser("retry", parents=parents,
                              help="requeue a failed or cancelled job (a train job resumes from its last checkpoint)")
    p.add_argument("--job", type=int, required=True)
    p.set_defaults(handler=cmd_retry)


def _log_to_file(store) -> None:
    handler = logging.FileHandler(store.config.logs_dir / f"worker-{os.getpid()}.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger("medssl").setLevel(logging.INFO)
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
               for h in logging.getLogger().handlers):
        logging.getLogger().addHandler(logging.StreamHandler())


def cmd_worker(args: argparse.Namespace) -> int:
    from engine.core.priority import lower_priority
    from engine.worker import Worker, install_signal_handlers

    store = store_from_args(args)
    _log_to_file(store)
    niceness = lower_priority(args.nice)
    worker = Worker(store, device=args.device)
    install_signal_handlers(worker)
    logging.getLogger("medssl.worker").info("worker %s started (pid %s, niceness %s)", worker.worker_id,
                                            os.getpid(), niceness)
    try:
        worker.serve(once=args.once)
    finally:
        worker.close()
    if worker.database_lost:
        print(f"error: the database file {worker.database_file} vanished while the worker ran; it stopped "
              "instead of writing to a deleted file", file=sys.stderr)
        return 1
    return 0


def cmd_run_job(args: argparse.Namespace) -> int:
    from engine.training import distributed
    from engine.worker import Worker

    if distributed.init(args.device):  # launched by torchrun: every rank runs this command
        try:
            return _run_job_ranked(args)
        finally:
            distributed.cleanup()
    store = store_from_args(args)
    with store.sessions.begin() as session:
        job = session.get(Job, args.job_id)
        if job is None or job.status != "queued":
            raise UsageError(f"job {args.job_id} is {'missing' if job is None else job.status}, not queued")
    worker = Worker(store, device=args.device)
    try:
        worker.run_once(job_id=args.job_id)
    finally:
        worker.close()
    with store.sessions.begin() as session:
        job = session.get(Job, args.job_id)
    print(f"job {job.id} {job.status}: {job.message or ''}")
    return 0 if job.status == "done" else 1


def _claimed_spec(store, job_id: int, worker) -> dict:
    """Rank 0: claim the job (or, for a worker's launch, check the worker holds it); what the others need."""
    with store.sessions.begin() as session:
        job = session.get(Job, job_id)
        wanted = "queued" if worker is not None else "running"
        if job is None or job.status != wanted:
            raise UsageError(f"job {job_id} is {'missing' if job is None else job.status}, not {wanted}")
        spec = {"kind": job.kind, "project_id": job.project_id, "params": dict(job.params), "attempt": job.attempts}
    if worker is not None:
        ctx = worker.claim(job_id)
        if ctx is None:
            raise UsageError(f"job {job_id} was claimed by another worker")
        spec["attempt"] = ctx.attempt
    return spec


def _run_job_ranked(args: argparse.Namespace) -> int:
    """One torchrun rank. Rank 0 claims the job, runs it and writes every result; the other ranks read the
    job's params and train alongside it without writing to the database."""
    from db.config import StoreConfig
    from db.store import open_store
    from engine.jobs.context import JobContext
    from engine.jobs.ddp import run_attached, run_follower, stop_on_signals
    from engine.training import distributed
    from engine.worker import Worker

    main = distributed.is_main()
    store = open_store(StoreConfig.from_env(home=args.home, db=args.db), migrate=main)
    worker = Worker(store, device=args.device) if main and args.result_file is None else None
    try:
        spec = distributed.run_on_main(lambda: _claimed_spec(store, args.job_id, worker))
        ctx = JobContext(store=store, job_id=args.job_id, device=args.device, **spec)
        if worker is not None:
            ctx.stop_event = worker.stop_event
        stop_on_signals(ctx.stop_event, main)
        if not main:
            run_follower(ctx)
            return 0
        if worker is None:
            run_attached(ctx, args.result_file)
            return 0
        worker.run_job(ctx)
        with store.sessions.begin() as session:
            job = session.get(Job, args.job_id)
            print(f"job {job.id} {job.status}: {job.message or ''}")
            return 0 if job.status == "done" else 1
    finally:
        if worker is not None:
            worker.close()
        store.dispose()


def cmd_jobs(args: argparse.Namespace) -> int:
    store = store_from_args(args, read=True)
    with store.sessions.begin() as session:
        project = project_or_usage_error(session, args.project)
        jobs = [job_dict(j) for j in session.scalars(select(Job).where(Job.project_id == project.id)
                                                       .order_by(Job.id))]
    if args.json:
        print(json.dumps(jobs, indent=2))
        return 0
    for job in jobs:
        print(f"#{job['id']:<5} {job['kind']:8s} {job['status']:10s} {job['progress']:5.0%} "
              f"attempts {job['attempts']}  {job['message'] or ''}")
    return 0


def _on_job(args: argparse.Namespace, action):
    """Run `action(session, job_id)` in one transaction; its ValueError (no such job, wrong state) is a usage error."""
    from db import audit
    from db.models import Job

    store = store_from_args(args)
    with store.sessions.begin() as session:
        actor = acting_user(session, args, "train")
        try:
            result = action(session, args.job)
        except ValueError as error:
            raise UsageError(str(error)) from error
        job = session.get(Job, args.job)
        audit.record(session, actor, f"job.{args.command}", project_id=job.project_id if job else None,
                     target_kind="job", target_id=args.job)
        return result


def cmd_cancel(args: argparse.Namespace) -> int:
    status = _on_job(args, request_cancel)
    print(f"job {args.job}: {status}" + (" (stops at its next step)" if status == "running" else ""))
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from db.jobs import retry

    job = _on_job(args, retry)  # the session keeps attributes after commit (expire_on_commit=False)
    print(f"job {job.id} ({job.kind}) queued again: {job.message}")
    return 0
