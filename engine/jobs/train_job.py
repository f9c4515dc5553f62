"""Job kind `train`: project labels -> arrays -> run_training -> Checkpoint row (active).

A retried attempt (worker killed, or stopped with SIGTERM) resumes from the job's own last.pt, so the
run finishes with the same planned number of epochs instead of starting over. Under torchrun every rank runs
this handler; only rank 0 reports progress and writes results (engine.jobs.ddp). Param `nproc` > 1 makes a
worker run the job under torchrun with that many processes.
"""
from __future__ import annotations

import logging
import math
from typing import Any

from db.enums import Task
from db.jobs import enqueue
from db.models import Project
from db.project_settings import effective
from db.readiness import training_readiness
from db.results import add_checkpoint, checkpoint_of_job, mark_shadow_of, set_active
from engine.core.config import SEGMENTATION_AUG, AugConfig, TrainConfig, replace, to_dict
from engine.data.catalog import SEGMENTATION_BACKBONES, SEGMENTATION_METHODS, defaults_for
from engine.jobs import register_handler
from engine.jobs.context import JobCancelled, JobContext, JobInterrupted
from engine.jobs.ddp import launch, shared_snapshot
from engine.jobs.run_record import checkpoint_file, run_metrics
from engine.jobs.shadow import (
    choose_active,
    compare,
    comparison_record,
    initial_weights,
    ssl_config_from_shadow,
    starts_from_shadow,
    wants_shadow,
)
from engine.jobs.shadow_run import ensure_shadow
from engine.jobs.stage1_cache import stage1_params
from engine.loaders.datasets import ArrayData
from engine.training import distributed
from engine.training.loop import Cancelled, run_training

log = logging.getLogger("medssl.train_job")


def _fmt(score: float | None) -> str:
    """A metric in a job message: 4 decimals, or "–" when undefined (never a 17-digit float)."""
    return "–" if score is None or math.isnan(score) else f"{score:.4f}"


class _Progress:
    """Train-loop callback -> throttled Job progress; turns a cancel/stop into the loop's Cancelled.

    A job with a supervised shadow runs two phases; `start_phase` maps each onto its share of the bar and
    keeps one val curve per phase (metrics.curve for the job's own method, metrics.shadow_curve).
    """

    def __init__(self, ctx: JobContext):
        self.ctx = ctx
        self.reason: Exception | None = None
        self.curves: dict[str, list[dict[str, Any]]] = {"curve": [], "shadow_curve": []}
        self.key, self.prefix, self.span = "curve", "", (0.0, 1.0)

    @property
    def curve(self) -> list[dict[str, Any]]:
        return self.curves["curve"]

    def start_phase(self, key: str, prefix: str, span: tuple[float, float]) -> None:
        self.key, self.prefix, self.span = key, prefix, span

    def _fraction(self, info: dict[str, Any]) -> float:
        lo, hi = self.span
        return lo + (hi - lo) * info["step"] / max(info["planned_steps"], 1)

    def _report(self, force: bool, **fields: Any) -> None:
        try:
            self.ctx.report(force=force, **fields)
        except (JobCancelled, JobInterrupted) as reason:
            self.reason = reason
            raise Cancelled(str(reason)) from reason

    def on_step(self, info: dict[str, Any]) -> None:
        loss = info["logs"].get("loss")
        self._report(False, progress=self._fraction(info),
                     message=f"{self.prefix}epoch {info['epoch']:.2f}, step {info['step']}/{info['planned_steps']}"
                             + (f", loss {float(loss):.4f}" if loss is not None else ""))

    def on_resume(self, info: dict[str, Any]) -> None:
        """The curve of the epochs before a crash comes back from the checkpoint's history."""
        key = "val_dice" if any("val_dice" in h for h in info["history"]) else "val_auc"
        self.curves[self.key] = [{"epoch": round(h["epoch"], 3), "step": h["step"], "val_score": h.get(key),
                                  "seconds": round(h["seconds"], 1)} for h in info["history"]]

    def on_epoch_end(self, info: dict[str, Any]) -> None:
        role = info["role"]
        val = info["metrics"][role]
        name, score = ("AUC", val.get("auc")) if "auc" in val else ("Dice", val.get("dice"))
        self.curves[self.key].append({"epoch": round(info["epoch"], 3), "step": info["step"], "val_score": score,
                                      "seconds": round(info["seconds"], 1)})
        self._report(True, progress=self._fraction(info),
                     message=f"{self.prefix}epoch {info['epoch']:.2f}: val {name} {_fmt(score)}",
                     metrics={**self.curves, "role": role, "score": name})


# Segmentation trains with the shared optimizer (Adam 1e-3, cosine), not SGD + poly (DECISIONS: SECL optimizer)


def _not_ready(store, project: Project) -> str | None:
    """Why this project cannot be trained yet (jobs queued before the labels changed are refused too)."""
    with store.sessions.begin() as session:
        readiness = training_readiness(session, session.get(Project, project.id))
    return "; ".join(readiness.problems) or None


def build_config(params: dict[str, Any], task: str) -> TrainConfig:
    """Job params -> TrainConfig, with task-appropriate defaults; a method for the wrong task is refused."""
    defaults = defaults_for(task)
    raw = {**defaults, **dict(params.get("config") or {})}
    for key in ("method", "backbone", "epochs", "seed", "budget_minutes"):
        if params.get(key) is not None:
            raw[key] = params[key]
    if (raw["method"] in SEGMENTATION_METHODS) != (task == Task.SEGMENTATION):
        raise ValueError(f"method {raw['method']!r} does not fit a {task} project "
                         f"(segmentation: {', '.join(SEGMENTATION_METHODS)})")
    if task == Task.SEGMENTATION:
        if raw["backbone"] not in SEGMENTATION_BACKBONES:
            raw["backbone"] = defaults["backbone"]
        raw["data"] = _segmentation_data(dict(raw.get("data") or {}))
    return TrainConfig.from_dict(raw)


def _segmentation_data(data: dict[str, Any]) -> dict[str, Any]:
    """Masks keep the affine-jittered weak view (SEGMENTATION_AUG) under any aug keys the job sets itself."""
    aug = data.get("aug")
    if isinstance(aug, AugConfig):
        return data
    return {**data, "aug": {**to_dict(SEGMENTATION_AUG), **dict(aug or {})}}


@register_handler("train")
def run_train_job(ctx: JobContext) -> str | None:
    nproc = int(ctx.params.get("nproc") or 1)
    if nproc > 1 and not distributed.is_distributed():
        return launch(ctx, nproc)
    main, store = distributed.is_main(), ctx.store
    with store.sessions.begin() as session:
        project = session.get(Project, ctx.project_id)
        if project is None:
            raise ValueError(f"project {ctx.project_id} no longer exists")
        session.expunge(project)
    cfg = build_config(ctx.params, project.task)
    if ctx.device:                       # `worker --device cpu|cuda` overrides the config's auto-pick
        cfg = replace(cfg, device=ctx.device)
    size = ctx.params.get("image_size") or project.image_size
    snap = shared_snapshot(store, project, size)
    if snap.labels_used == 0:
        raise ValueError("no labeled images yet: label some cases (or import labels) before training")
    problem = distributed.run_on_main(lambda: _not_ready(store, project))  # rank 0 asks, every rank obeys
    if problem:
        raise ValueError(problem)
    data = ArrayData(images=snap.images, labels=snap.labels, class_names=tuple(project.classes),
                     task=project.task, labeled_mask=snap.labeled_mask, groups=snap.groups,
                     val_images=snap.val_images, val_labels=snap.val_labels)
    run_dir = store.config.checkpoints_dir / f"p{project.id}" / f"job{ctx.job_id}"
    progress = _Progress(ctx)
    resume = run_dir / "last.pt" if distributed.run_on_main((run_dir / "last.pt").exists) else None
    shadow = ensure_shadow(ctx, project, cfg, data, snap, run_dir, progress, main) \
        if wants_shadow(cfg.method, ctx.params) else None
    ssl_cfg, init = cfg, None
    stage1_reused = None
    if cfg.method == "s2mts2":  # its label-free stage 1 is reused across runs until the pool grows by 25 %
        params, stage1_reused = distributed.run_on_main(
            lambda: stage1_params(run_dir.parent / "s2mts2_stage1", run_dir, cfg, len(snap.images)))
        ssl_cfg = cfg = replace(cfg, method_params=params)
    if shadow is not None and starts_from_shadow(cfg.method):
        ssl_cfg = ssl_config_from_shadow(cfg)
        init = None if resume else initial_weights(shadow.path, shadow.role)
    if resume:
        log.info("job %s resumes from %s", ctx.job_id, resume)
    progress.start_phase("curve", "", (0.5, 1.0) if shadow is not None and not shadow.reused else (0.0, 1.0))
    message = "resuming from last checkpoint" if resume else "preparing data"
    distributed.decide_on_main(lambda: ctx.report(message=message, force=True) or 0)
    try:
        result = run_training(ssl_cfg, data, callbacks=[progress] if main else [], checkpoint_dir=run_dir,
                              resume=resume, init_state=init)
    except Cancelled:
        raise progress.reason or JobCancelled("cancelled")
    if not main:  # ranks > 0 never write to the database
        return None
    best = checkpoint_file(result, run_dir)
    metrics = run_metrics(result, snap, result.selected_role)
    record = None
    if shadow is not None:
        ctx.report(message="comparing with the supervised shadow on val (paired bootstrap)", force=True)
        delta = compare(best, result.selected_role, shadow.path, shadow.role, data, cfg.seed)
        record = comparison_record(delta, shadow.checkpoint_id, shadow.method, shadow.reused)
        metrics["shadow"] = record
        # a resumed attempt restores last.pt (init None) but its run also started from the shadow
        metrics["init"] = f"checkpoint {shadow.checkpoint_id}" if starts_from_shadow(cfg.method) else None
    rule = effective(project)["activate"]
    winner, why = choose_active(rule, record)
    metrics["activation"] = {"rule": rule, "active": winner, "why": why}
    if stage1_reused is not None:
        metrics["stage1_reused"] = stage1_reused
    with store.sessions.begin() as session:  # idempotent by job id: a retry after a kill here adds nothing
        checkpoint = checkpoint_of_job(session, ctx.job_id, cfg.method)
        if checkpoint is None:
            checkpoint = add_checkpoint(session, project.id, ctx.job_id, cfg.method, cfg.backbone,
                                        best.relative_to(store.config.home).as_posix(), ssl_cfg.to_dict(),
                                        metrics, snap.labels_used, snap.label_hash, activate=winner == "ssl")
            active_id = checkpoint.id
            if winner == "shadow" and shadow is not None:
                set_active(session, shadow.checkpoint_id)
                mark_shadow_of(session, shadow.checkpoint_id, checkpoint.id)
                active_id = shadow.checkpoint_id
            enqueue(session, "analyze", {"checkpoint_id": active_id}, project_id=project.id, dedupe=True)
    key = "dice" if project.task == Task.SEGMENTATION else "auc"
    score = (result.best_metrics.get(result.selected_role) or {}).get(key)
    tail = "" if record is None else f"; supervised shadow {_fmt(record['value'])}, active: {winner}"
    return (f"checkpoint {checkpoint.id}: {cfg.method}, val {key.upper() if key == 'auc' else key} {_fmt(score)}, "
            f"{result.epochs_run:.1f} epochs ({result.stopped}){tail}")
