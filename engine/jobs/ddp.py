"""Train jobs under torchrun: one snapshot for all ranks, follower ranks, and the worker's torchrun launch.

Rank 0 owns the job: it claims it, reports progress and writes every result. Ranks > 0 read the job's params
and train alongside without writing to the database. A worker that claims a job with params `nproc` > 1
starts `torchrun --nproc_per_node=N -m engine run-job ID --result-file F`; the ranks then run the already
claimed job, rank 0 writes how it ended to F, and the worker records that as usual.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

from db.models import Project
from db.store import Store
from engine.jobs import load_handlers
from engine.jobs.context import JobCancelled, JobContext, JobInterrupted
from engine.jobs.snapshot import Snapshot, load_snapshot, snapshot_rows
from engine.training import distributed

log = logging.getLogger("medssl.ddp")
REPO_ROOT = Path(__file__).resolve().parents[2]
DDP_KINDS = ("train",)  # the only data-parallel job kind; rank 0 runs any other kind alone


def shared_snapshot(store: Store, project: Project, size: int | None) -> Snapshot:
    """Every rank trains on rank 0's snapshot (labels can change between two reads); rank 0 builds the cache."""
    if not distributed.is_distributed():
        return load_snapshot(store, project, size)
    built: list[Snapshot] = []

    def first() -> list:
        rows = snapshot_rows(store, project)
        built.append(load_snapshot(store, project, size, rows))
        return rows

    rows = distributed.run_on_main(first)
    return built[0] if built else load_snapshot(store, project, size, rows)


def run_follower(ctx: JobContext) -> None:
    """Ranks > 0: run the train handler alongside rank 0; a cancel or stop that rank 0 broadcasts ends quietly."""
    if ctx.kind not in DDP_KINDS:
        return
    try:
        load_handlers()[ctx.kind](ctx)
    except (JobCancelled, JobInterrupted) as reason:
        log.info("rank %d: job %s stopped with rank 0 (%s)", distributed.rank(), ctx.job_id, reason)


def run_attached(ctx: JobContext, result_file: Path) -> None:
    """Rank 0 of a worker-launched torchrun: run the claimed job, write its outcome for the worker."""
    outcome: dict[str, str | None] = {"status": "done", "message": None, "error": None}
    try:
        outcome["message"] = load_handlers()[ctx.kind](ctx)
    except JobCancelled:
        outcome["status"] = "cancelled"
    except JobInterrupted:
        outcome["status"] = "interrupted"
    except Exception as exc:  # noqa: BLE001 -- the worker marks the job failed with this error
        outcome.update(status="failed", message=f"failed: {exc}", error=traceback.format_exc())
    result_file.write_text(json.dumps(outcome))


def stop_on_signals(ctx_stop, main: bool) -> None:
    """SIGTERM/SIGINT: rank 0 stops at its next step (checkpoint, requeue) and tells the others; ranks > 0
    keep going until that broadcast arrives, so no rank leaves a collective behind."""
    def handle(signum, _frame) -> None:
        if main:
            ctx_stop.set()
        log.info("rank %d: signal %s, stopping with rank 0", distributed.rank(), signum)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def launch(ctx: JobContext, nproc: int) -> str | None:
    """Worker side of a multi-process job: run it under torchrun and turn rank 0's outcome into ours."""
    config = ctx.store.config
    fd, name = tempfile.mkstemp(prefix=f"job{ctx.job_id}-", suffix=".json", dir=config.logs_dir)
    os.close(fd)
    result = Path(name)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "engine", "run-job", str(ctx.job_id), "--result-file", str(result),
               "--home", str(config.home), "--db", config.db_url]
    if ctx.device:
        command += ["--device", ctx.device]
    if logging.getLogger().isEnabledFor(logging.INFO):  # the ranks log as verbosely as this worker
        command.append("-v")
    log.info("job %s: launching %d ranks: %s", ctx.job_id, nproc, " ".join(command))
    process = subprocess.Popen(command, cwd=REPO_ROOT)
    try:
        while process.poll() is None:
            if ctx.stop_event.wait(1.0) and process.poll() is None:
                process.send_signal(signal.SIGTERM)  # torchrun forwards it; rank 0 checkpoints and stops
                process.wait()
        outcome = json.loads(result.read_text() or "null")
    finally:
        if process.poll() is None:
            process.kill()
        result.unlink(missing_ok=True)
    if outcome is None:
        if ctx.stop_event.is_set():
            raise JobInterrupted("worker shutting down")
        raise RuntimeError(f"torchrun exited with status {process.returncode} before rank 0 reported")
    if outcome["status"] == "cancelled":
        raise JobCancelled("cancelled by user")
    if outcome["status"] == "interrupted":
        raise JobInterrupted("stopped")
    if outcome["status"] == "failed":
        raise RuntimeError(f"{outcome['message']}\n--- rank 0 ---\n{outcome['error']}")
    return outcome["message"]
