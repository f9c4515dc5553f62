"""worker, jobs, cancel: the background queue from the command line."""
from __future__ import annotations

import argparse
import json
import logging
import os

from sqlalchemy import select

from db.jobs import job_dict, request_cancel
from db.models import Job
from engine.cli.common import UsageError, project_or_usage_error, store_from_args


def register(subparsers, parents) -> None:
    p = subparsers.add_parser("worker", parents=parents, help="run queued jobs (train, analyze, ...)")
    p.add_argument("--once", action="store_true", help="run the queued jobs, then exit when idle")
    p.add_argument("--device", choices=["cuda", "cpu"], help="default: CUDA when present")
    p.set_defaults(handler=cmd_worker)

    p = subparsers.add_parser("run-job", parents=parents,
                              help="run one queued job in this process (the unit torchrun wraps for multi-GPU)")
    p.add_argument("job_id", type=int)
    p.add_argument("--device", choices=["cuda", "cpu"], help="default: CUDA when present")
    p.set_defaults(handler=cmd_run_job)

    p = subparsers.add_parser("jobs", parents=parents, help="list a project's jobs")
    p.add_argument("--project", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_jobs)

    p = subparsers.add_parser("cancel", parents=parents, help="cancel a queued or running job")
    p.add_argument("--job", type=int, required=True)
    p.set_defaults(handler=cmd_cancel)


def _log_to_file(store) -> None:
    handler = logging.FileHandler(store.config.logs_dir / f"worker-{os.getpid()}.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger("medssl").setLevel(logging.INFO)
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
               for h in logging.getLogger().handlers):
        logging.getLogger().addHandler(logging.StreamHandler())


def cmd_worker(args: argparse.Namespace) -> int:
    from engine.worker import Worker, install_signal_handlers

    store = store_from_args(args)
    _log_to_file(store)
    worker = Worker(store, device=args.device)
    install_signal_handlers(worker)
    logging.getLogger("medssl.worker").info("worker %s started (pid %s)", worker.worker_id, os.getpid())
    try:
        worker.serve(once=args.once)
    finally:
        worker.close()
    return 0


def cmd_run_job(args: argparse.Namespace) -> int:
    from engine.worker import Worker

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


def cmd_jobs(args: argparse.Namespace) -> int:
    store = store_from_args(args)
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


def cmd_cancel(args: argparse.Namespace) -> int:
    store = store_from_args(args)
    with store.sessions.begin() as session:
        try:
            status = request_cancel(session, args.job)
        except ValueError as error:
            raise UsageError(str(error)) from error
    print(f"job {args.job}: {status}" + (" (stops at its next step)" if status == "running" else ""))
    return 0
