"""train, analyze: enqueue a job; --wait blocks (running it here when no worker is alive)."""
from __future__ import annotations

import argparse
import sys

from db.jobs import enqueue
from db.models import Checkpoint
from db.projects import touch_project
from db.readiness import training_readiness
from db.results import active_checkpoint_id
from db.status import alive_workers
from engine.cli import ranges
from engine.cli.common import (
    UsageError,
    acting_user,
    finish_job,
    project_or_usage_error,
    store_from_args,
)
from engine.data.catalog import (
    CLASSIFICATION_METHODS,
    CLASSIFIER_BACKBONES,
    SEGMENTATION_BACKBONES,
    SEGMENTATION_METHODS,
    defaults_for,
    fit_problem,
)

METHOD_NAMES = [*CLASSIFICATION_METHODS, *SEGMENTATION_METHODS]
BACKBONES = [*CLASSIFIER_BACKBONES, *SEGMENTATION_BACKBONES]


def register(subparsers, parents) -> None:
    p = subparsers.add_parser("train", parents=parents,
                              help="train on the project's labels + unlabeled pool (enqueues a job)")
    p.add_argument("--project", required=True)
    p.add_argument("--method", choices=METHOD_NAMES, help=f"default: {defaults_for('classification')['method']} (classification), "
                   f"{defaults_for('segmentation')['method']} (segmentation)")
    p.add_argument("--backbone", choices=BACKBONES,
                   help=f"default: {defaults_for('classification')['backbone']} (classification, CPU), "
                        f"{defaults_for('segmentation')['backbone']} (segmentation)")
    p.add_argument("--epochs", type=ranges.EPOCHS, help="passes over the training pool (default from the method config)")
    p.add_argument("--image-size", type=ranges.IMAGE_SIZE, help="default: the project's image size")
    p.add_argument("--seed", type=ranges.SEED, default=0)
    p.add_argument("--budget-minutes", type=ranges.BUDGET_MINUTES, help="bound the training time of this run")
    p.add_argument("--nproc", type=ranges.NPROC, help="data-parallel processes (DDP, one per GPU): the worker runs the job "
                                             "under torchrun --nproc_per_node=N")
    p.add_argument("--no-shadow", action="store_true",
                   help="skip the supervised shadow (same labels and budget, trained first or reused) that every "
                        "semi-supervised job is compared with on val")
    p.add_argument("--wait", action="store_true", help="block until done; runs here when no worker is alive")
    p.set_defaults(handler=cmd_train)

    p = subparsers.add_parser("analyze", parents=parents,
                              help="predictions, uncertainty, embeddings, 2-D map and kNN graph for a checkpoint")
    p.add_argument("--project", required=True)
    p.add_argument("--checkpoint", type=ranges.ID, help="checkpoint id (default: the active one)")
    p.add_argument("--mc-passes", type=_mc_passes, metavar="N",
                   help="also store MC-dropout variance from N >= 2 stochastic passes (default: off, "
                        "or the project setting mc_passes)")
    p.add_argument("--wait", action="store_true", help="block until done; runs here when no worker is alive")
    p.set_defaults(handler=cmd_analyze)


def _mc_passes(text: str) -> int:
    """0 turns MC-dropout off; 1 pass has no variance, so it is refused rather than silently stored as 0."""
    value = int(text)
    if value != 0 and value < 2:
        raise argparse.ArgumentTypeError("--mc-passes must be 0 (off) or at least 2")
    return value


def _checkpoint_of(session, project, checkpoint_id: int | None) -> int:
    """The checkpoint to analyze, pinned so equal requests dedupe; unknown or foreign ids are a usage error."""
    if checkpoint_id is None:
        checkpoint_id = active_checkpoint_id(session, project.id)
        if checkpoint_id is None:
            raise UsageError(f"project {project.name!r} has no model yet: train one first")
    checkpoint = session.get(Checkpoint, checkpoint_id)
    if checkpoint is None or checkpoint.project_id != project.id:
        raise UsageError(f"no checkpoint {checkpoint_id} in project {project.name!r}")
    return checkpoint_id


def _enqueue(args: argparse.Namespace, kind: str, params: dict, dedupe: bool = False) -> int:
    store = store_from_args(args)
    with store.sessions.begin() as session:
        project = project_or_usage_error(session, args.project)
        touch_project(session, project)
        creator = acting_user(session, args, "train", project)
        params = {k: v for k, v in params.items() if v is not None}
        if kind == "train" and (problem := fit_problem(project.task, params.get("method"), params.get("backbone"))):
            raise UsageError(problem)
        if kind == "train":
            readiness = training_readiness(session, project)
            if not readiness.ready:
                raise UsageError("; ".join(readiness.problems))
            for warning in readiness.warnings:
                print(f"warning: {warning}", file=sys.stderr)
        if kind == "analyze":
            params["checkpoint_id"] = _checkpoint_of(session, project, params.get("checkpoint_id"))
        job_id = enqueue(session, kind, params, project_id=project.id, actor=creator, dedupe=dedupe).id
        workers = alive_workers(session)
    print(f"queued {kind} job {job_id}")
    if not args.wait:
        return 0
    return _wait(store, job_id, run_here=workers == 0)


def _wait(store, job_id: int, run_here: bool) -> int:
    job = finish_job(store, job_id, run_here)
    print(f"job {job_id} {job.status}: {job.message or ''}")
    if job.status != "done" and job.error:
        print(job.error, file=sys.stderr)
    return 0 if job.status == "done" else 1


def cmd_train(args: argparse.Namespace) -> int:
    return _enqueue(args, "train", {"method": args.method, "backbone": args.backbone, "epochs": args.epochs,
                                    "seed": args.seed, "image_size": args.image_size,
                                    "budget_minutes": args.budget_minutes,
                                    "nproc": args.nproc if args.nproc and args.nproc > 1 else None,
                                    **({"shadow": False} if args.no_shadow else {})})


def cmd_analyze(args: argparse.Namespace) -> int:
    return _enqueue(args, "analyze", {"checkpoint_id": args.checkpoint, "mc_passes": args.mc_passes},
                    dedupe=True)
