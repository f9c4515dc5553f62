"""ensure_shadow: find or train (resumably) the supervised shadow of a train job and register it, inactive."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from db.models import Checkpoint, Project
from db.results import add_checkpoint, checkpoint_of_job, find_shadow
from engine.jobs.context import JobCancelled, JobContext
from engine.jobs.run_record import checkpoint_file, run_metrics
from engine.jobs.shadow import shadow_config
from engine.loaders.datasets import ArrayData
from engine.training import distributed
from engine.training.loop import Cancelled, run_training

log = logging.getLogger("medssl.shadow")


@dataclass(frozen=True)
class ShadowRef:
    checkpoint_id: int | None  # None on DDP ranks > 0 (they never touch the database)
    path: Path  # its best.pt, absolute
    role: str  # the model its selection looked at (teacher = its EMA copy)
    method: str
    reused: bool  # trained by an earlier job on the same labels and settings


def ensure_shadow(ctx: JobContext, project: Project, cfg: Any, data: ArrayData, snap: Any, run_dir: Path,
                  progress: Any, main: bool) -> ShadowRef:
    store = ctx.store
    scfg = shadow_config(cfg, project.task)
    config = scfg.to_dict()

    def lookup() -> tuple[int, str, str, bool] | None:
        with store.sessions.begin() as session:
            row = checkpoint_of_job(session, ctx.job_id, scfg.method) or \
                find_shadow(session, project.id, snap.label_hash, scfg.method, config)
            if row is None:
                return None
            return row.id, row.path, str((row.metrics or {}).get("role") or "student"), row.job_id != ctx.job_id

    found = distributed.run_on_main(lookup)
    if found is not None and (store.config.home / found[1]).exists():
        checkpoint_id, rel, role, reused = found
        log.info("job %s: supervised shadow = checkpoint %s (%s)", ctx.job_id, checkpoint_id,
                 "reused" if reused else "trained earlier in this job")
        return ShadowRef(checkpoint_id, store.config.home / rel, role, scfg.method, reused)
    shadow_dir = run_dir / "shadow"
    resume = shadow_dir / "last.pt" if distributed.run_on_main((shadow_dir / "last.pt").exists) else None
    progress.start_phase("shadow_curve", "supervised shadow: ", (0.0, 0.5))
    distributed.decide_on_main(lambda: ctx.report(progress=0.0, force=True, message=(
        "supervised shadow: resuming" if resume else "supervised shadow: same labels, same budget")) or 0)
    try:
        result = run_training(scfg, data, callbacks=[progress] if main else [], checkpoint_dir=shadow_dir,
                              resume=resume)
    except Cancelled:
        raise progress.reason or JobCancelled("cancelled")
    best = checkpoint_file(result, shadow_dir)
    role = distributed.run_on_main(lambda: result.selected_role)
    if not main:
        return ShadowRef(None, best, role, scfg.method, False)
    metrics = {**run_metrics(result, snap, role), "shadow_for_job": ctx.job_id}
    with store.sessions.begin() as session:
        row: Checkpoint | None = checkpoint_of_job(session, ctx.job_id, scfg.method)
        if row is None:
            row = add_checkpoint(session, project.id, ctx.job_id, scfg.method, scfg.backbone,
                                 best.relative_to(store.config.home).as_posix(), config, metrics,
                                 snap.labels_used, snap.label_hash, activate=False)
        checkpoint_id = row.id
    return ShadowRef(checkpoint_id, best, role, scfg.method, False)
