"""run_training: the one training loop (two-stream batches, plan, validation, checkpoints, callbacks)."""
from __future__ import annotations

import copy
import functools
import itertools
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import distributed, seg_task
from engine.checkpoints import cpu_state, load_checkpoint, method_state, plain, save_checkpoint
from engine.config import TrainConfig
from engine.device import (
    amp_dtype,
    autocast,
    default_threads,
    pick_device,
    rng_state,
    seed_everything,
    set_rng_state,
)
from engine.infer import predict_tensor
from engine.loaders.datasets import ArrayData, stratified_holdout, targets_tensor, to_uint8_tensor
from engine.loaders.samplers import TwoStreamSampler
from engine.loaders.transforms import ViewMaker
from engine.methods import METHODS, Batch, Plan, SSLMethod, StepOutput
from engine.methods.ramps import lr_factors
from engine.metrics import classification_metrics
from engine.models import create_model
from engine.models.unet import create_seg_model
from engine.train_ddp import DDPRun

log = logging.getLogger(__name__)
CALIBRATION_STEPS = 20  # CONTRACTS §6: the budget plan is fixed after timing the first 20 iterations
STOPS = ("completed", "early_stop", "budget")  # epoch-boundary decisions, by code (broadcast under DDP)


class NonFiniteLossError(RuntimeError):
    """The loss became NaN/inf; training stops at once (no silent divergence)."""


class Cancelled(Exception):
    """Raised by a callback to stop training; the loop saves last.pt and re-raises."""


@dataclass
class TrainResult:
    config: TrainConfig
    best_metrics: dict[str, dict[str, Any]]  # val metrics per model role at the selected epoch
    selected_role: str  # the model role selection and early stopping looked at
    best_step: int
    steps_run: int
    planned_steps: int
    steps_per_epoch: int
    train_seconds: float
    stopped: str  # completed | early_stop | budget
    history: list[dict[str, Any]] = field(default_factory=list)
    best_state: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    best_checkpoint: Path | None = None
    last_checkpoint: Path | None = None

    @property
    def epochs_run(self) -> float:
        return self.steps_run / self.steps_per_epoch


def run_training(cfg: TrainConfig, data: ArrayData, method: str | None = None, callbacks: Sequence[Any] = (),
                 *, checkpoint_dir: str | Path | None = None, resume: str | Path | None = None,
                 init_state: dict[str, torch.Tensor] | None = None) -> TrainResult:
    """Train `method` (default cfg.method) on `data`; callbacks get on_step / on_eval / on_epoch_end.

    init_state: student weights to start from (e.g. the supervised shadow); resume: a last.pt to continue.
    Under torchrun (engine.distributed initialised) every rank calls this; only rank 0 validates, writes
    checkpoints and calls the callbacks.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(cfg.num_threads or max(1, default_threads() // distributed.local_world_size()))
    try:
        return _Trainer(cfg, data, method or cfg.method, callbacks, checkpoint_dir, init_state).run(resume)
    finally:
        torch.set_num_threads(previous)


class _Trainer:
    def __init__(self, cfg: TrainConfig, data: ArrayData, method: str, callbacks: Sequence[Any],
                 checkpoint_dir: str | Path | None, init_state: dict | None) -> None:
        seed_everything(cfg.seed)
        self.cfg, self.data, self.callbacks = cfg, data, list(callbacks)
        self.cfg = cfg = TrainConfig.from_dict({**cfg.to_dict(), "method": method})
        self.dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.rank, self.world = distributed.rank(), distributed.world_size()
        self.main = self.rank == 0
        self.device = pick_device(cfg.device)
        self.dtype = amp_dtype(self.device, cfg.amp)
        self.segmentation = data.task == "segmentation"
        if data.task not in METHODS[method].tasks:
            raise ValueError(f"method {method!r} cannot train {data.task} data")
        self._prepare_data(data)
        student = create_seg_model(cfg.backbone, len(data.class_names), data.in_chans) if self.segmentation \
            else create_model(cfg.backbone, len(data.class_names), data.in_chans, cfg.pretrained)
        if init_state is not None:
            student.load_state_dict(init_state)
        self.views = ViewMaker(cfg.data.aug, cfg.data.mean, cfg.data.std)
        counts = self._class_counts()
        self.method: SSLMethod = METHODS[method](student, data.task, len(data.class_names), self.views,
                                                 cfg.method_params, counts).to(self.device)
        if self.device.type == "cuda" and cfg.channels_last:
            self.method.to(memory_format=torch.channels_last)
        self.optimizer = _optimizer(cfg, [p for p in self.method.parameters() if p.requires_grad])
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)
        self.spe = self.sampler.steps_per_epoch(cfg.data.epoch_definition)
        self.ddp = DDPRun(self.method, self.device, cfg.seed) if distributed.is_distributed() else None
        if self.ddp is not None:
            self.ddp.log_shard(self.sampler, self.spe)
        self.step, self.best_score, self.best_step, self.bad_evals = 0, -math.inf, -1, 0
        self.best_metrics: dict = {}
        self.best_state: dict = {}
        self.history: list[dict] = []
        self.seconds = 0.0

    # --- setup ------------------------------------------------------------------------------------
    def _prepare_data(self, data: ArrayData) -> None:
        labeled = np.flatnonzero(data.is_labeled)
        pool = np.arange(len(data.images))
        if data.val_images is None:  # CONTRACTS §6: stratified, patient-disjoint 20 % of the labeled
            groups = None if data.groups is None else np.asarray(data.groups)[labeled]
            keys = np.zeros(len(labeled), np.int64) if self.segmentation else np.asarray(data.labels)[labeled]
            keep, held = stratified_holdout(keys, groups, 0.2, self.cfg.seed)
            val_idx, labeled = labeled[held], labeled[keep]
            pool = np.setdiff1d(pool, val_idx)
            val_images, val_labels = data.images[val_idx], np.asarray(data.labels)[val_idx]
        else:
            val_images, val_labels = data.val_images, np.asarray(data.val_labels)
        unlabeled = np.setdiff1d(pool, labeled)
        size = self.cfg.data.image_size
        self.images = to_uint8_tensor(data.images, size).to(self.device)
        self.targets = (seg_task.mask_tensor(data.labels, size) if self.segmentation else
                        targets_tensor(np.asarray(data.labels), data.task)).to(self.device)
        self.val_images = to_uint8_tensor(val_images, size).to(self.device)
        self.val_labels = seg_task.mask_tensor(val_labels, size).numpy() if self.segmentation else val_labels
        self.labeled_idx = labeled
        self.sampler = TwoStreamSampler(labeled, unlabeled if len(unlabeled) else pool,
                                        self.cfg.data.labeled_batch, self.cfg.data.unlabeled_batch, self.cfg.seed,
                                        pool_size=len(pool), rank=self.rank, world_size=self.world)

    def _class_counts(self) -> np.ndarray:
        labels = np.asarray(self.data.labels)[self.labeled_idx]
        if self.segmentation:
            return seg_task.pixel_counts(labels, len(self.data.class_names))
        if self.data.task == "multiclass":
            return np.bincount(labels, minlength=len(self.data.class_names))
        return labels.sum(axis=0)

    # --- plan -------------------------------------------------------------------------------------
    def _fixed_total(self) -> int:
        total = (self.cfg.epochs or 10**9) * self.spe
        return max(1, min(total, self.cfg.max_steps or total))

    def _set_plan(self, total: int) -> None:
        self.plan = Plan(total_steps=total, steps_per_epoch=self.spe)
        self.method.set_plan(self.plan)
        o = self.cfg.optim
        self.lr = o.lr * lr_factors(total, o.schedule, int(o.warmup_fraction * total), self.spe, o.gamma,
                                    self.method.lr_restarts())

    def _calibrate(self) -> None:
        """Budget mode: time 20 real steps, one probe per later phase and one validation, then fix the plan."""
        budget, start = self.cfg.budget_minutes * 60.0, time.perf_counter()
        provisional = self._fixed_total() if self.cfg.epochs else 10**6
        self._set_plan(provisional)
        tic = time.perf_counter()
        for _ in range(CALIBRATION_STEPS):
            self._train_step()
            if self.step == CALIBRATION_STEPS // 4:  # skip allocator/first-call warm-up
                tic = time.perf_counter()
        costs = {self.method.phase_fractions()[0][0]: (time.perf_counter() - tic) / (CALIBRATION_STEPS * 3 // 4)}
        for name, frac in self.method.phase_fractions()[1:]:
            costs[name] = self._probe(int(frac * provisional) + 1)
        tic = time.perf_counter()
        if self.main:  # DDP: the other ranks wait for rank 0's plan below
            self._evaluate()
        eval_cost = time.perf_counter() - tic
        fracs = self.method.phase_fractions() + [("end", 1.0)]
        per_step = sum((b[1] - a[1]) * costs[a[0]] for a, b in itertools.pairwise(fracs))
        left = budget - (time.perf_counter() - start)
        total = int(left / (per_step + eval_cost / self.spe) * 0.97) + self.step
        total = max(self.step + 1, min(total, self._fixed_total() if self.cfg.epochs else total,
                                       self.cfg.max_steps or total))
        total = distributed.broadcast_int(total)  # every rank follows rank 0's plan
        log.info("budget plan: %d steps (%.1f epochs); step costs %s s, eval %.2f s", total, total / self.spe,
                 {k: round(v, 4) for k, v in costs.items()}, eval_cost)
        self._set_plan(total)

    def _probe(self, step: int) -> float:
        """Seconds per step of a later phase, measured on throwaway steps (state restored afterwards)."""
        snapshot = copy.deepcopy(self.method.state_dict())
        times = []
        for i in range(3):
            tic = time.perf_counter()
            out = self._forward(step + i)
            out.loss.backward()
            times.append(time.perf_counter() - tic)
        self.optimizer.zero_grad(set_to_none=True)
        self.method.load_state_dict(snapshot)
        return float(np.median(times))

    # --- steps --------------------------------------------------------------------------------------
    def _forward(self, step: int) -> StepOutput:
        need_unlabeled = self.method.needs_unlabeled(step)
        lab, unl = (torch.from_numpy(i).to(self.device) for i in self.sampler.batch(step, need_unlabeled))
        gen = torch.Generator(device=self.device)
        seed = self.cfg.seed * 1_000_003 + step
        gen.manual_seed(seed if self.ddp is None else self.ddp.aug_seed(seed))
        batch = Batch(self.images[lab], self.targets[lab], self.images[unl], step, gen)
        with autocast(self.device, self.dtype):
            out = self.method.train_step(batch)
        if self.ddp is not None:
            self.ddp.count(lab, unl)
            out.loss = self.ddp.touch_all(out.loss)
        return out

    def _train_step(self) -> StepOutput:
        step = self.step
        for group in self.optimizer.param_groups:
            group["lr"] = float(self.lr[step])
        out = self._forward(step)
        finite = bool(torch.isfinite(out.loss.detach()))
        if self.ddp is not None:
            finite = not distributed.any_true(not finite)  # every rank stops together
        if not finite:
            raise NonFiniteLossError(f"non-finite loss {float(out.loss.detach())} at step {step} "
                                     f"(epoch {step / self.spe:.2f}) with {self.cfg.method}; logs: {out.logs}")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(out.loss).backward()
        if self.ddp is not None:
            self.ddp.after_backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.method.after_step(step)
        self.step += 1
        return out

    # --- evaluation, checkpoints ------------------------------------------------------------------------
    def _evaluate(self) -> dict[str, dict[str, Any]]:
        metrics = {}
        for role, model in self.method.eval_models().items():
            if self.segmentation:
                metrics[role] = seg_task.evaluate(model, self.val_images, self.val_labels, self.views,
                                                  self.data.class_names, self.cfg.eval_batch_size, self.dtype)
                continue
            probs, _ = predict_tensor(model, self.val_images, self.views, self.data.task, self.cfg.eval_batch_size,
                                      self.dtype)
            metrics[role] = classification_metrics(probs, self.val_labels, self.data.task, self.data.class_names,
                                                    self.cfg.threshold, self.cfg.auc_classes)
        return metrics

    def _role(self, metrics: dict) -> str:
        if self.cfg.select_on != "auto" and self.cfg.select_on in metrics:
            return self.cfg.select_on
        return "teacher" if "teacher" in metrics else "student"

    def _payload(self, metrics: dict) -> dict[str, Any]:
        m = self.method
        return {"config": self.cfg.to_dict(), "class_names": list(self.data.class_names), "task": self.data.task,
                "model": {"backbone": self.cfg.backbone, "num_classes": len(self.data.class_names),
                          "in_chans": self.data.in_chans, "image_size": int(self.images.shape[-1])},
                "metrics": plain(metrics), "student": cpu_state(m.student),
                "teacher": cpu_state(m.teacher) if m.teacher is not None else None,
                "method_extra": {k: v.detach().cpu() for k, v in m.extra_state().items()},
                "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                "step": self.step, "epoch": self.step / self.spe, "world_size": self.world,
                "plan": {"total_steps": self.plan.total_steps, "steps_per_epoch": self.spe},
                "progress": plain({"best_score": self.best_score, "best_step": self.best_step,
                                   "bad_evals": self.bad_evals, "seconds": self.seconds, "history": self.history,
                                   "best_metrics": self.best_metrics}),
                "rng": rng_state()}

    def _restore(self, path: str | Path) -> None:
        ckpt = load_checkpoint(path, map_location=self.device)
        # written by another number of DDP ranks (other steps per epoch): resume at the same epoch position
        scale = self.spe / ckpt["plan"]["steps_per_epoch"] if ckpt.get("world_size", 1) != self.world else 1.0
        self._set_plan(round(ckpt["plan"]["total_steps"] * scale))
        self.method.load_state_dict(method_state(ckpt))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.step = round(ckpt["step"] * scale)
        prog = ckpt["progress"]
        self.best_score, self.best_step, self.bad_evals = prog["best_score"], round(prog["best_step"] * scale), \
            prog["bad_evals"]
        self.seconds, self.history, self.best_metrics = prog["seconds"], prog["history"], prog["best_metrics"]
        best = Path(path).with_name("best.pt")
        if best.exists():
            b = load_checkpoint(best)
            self.best_state = {r: b[r] for r in ("student", "teacher") if b.get(r) is not None}
        set_rng_state(ckpt["rng"])
        if self.ddp is not None:
            self.ddp.reseed(self.step)

    # --- loop ---------------------------------------------------------------------------------------
    def _emit(self, event: str, info: dict[str, Any]) -> int:
        """Call the callbacks (rank 0 only; run through distributed.decide_on_main so a cancel stops all)."""
        for callback in self.callbacks if self.main else ():
            handler = getattr(callback, event, None)
            if handler is not None:
                handler(info)
        return 0

    def _end_epoch(self) -> bool:
        """Validate, keep the best, checkpoint; True when training should stop early."""
        metrics = self._evaluate()
        role = self._role(metrics)
        key = seg_task.SELECT_KEY if self.segmentation else "auc"
        score = metrics[role][key]
        score = -math.inf if score is None or math.isnan(score) else score
        improved = score > self.best_score
        if improved:
            self.best_score, self.best_step, self.bad_evals, self.best_metrics = score, self.step, 0, metrics
            self.best_state = {r: cpu_state(mod) for r, mod in self.method.eval_models().items()}
        else:
            self.bad_evals += 1
        self.seconds = time.perf_counter() - self.t0  # wall clock, validation included
        info = {"step": self.step, "epoch": self.step / self.spe, "metrics": metrics, "role": role,
                "improved": improved, "seconds": self.seconds, "planned_steps": self.plan.total_steps}
        self.history.append(plain({k: info[k] for k in ("step", "epoch", "seconds")} |
                                  {f"val_{key}": score, f"val_{key}_student": metrics["student"][key]}))
        self._emit("on_eval", info)
        if self.dir is not None:
            payload = self._payload(metrics)
            if improved:
                save_checkpoint(self.dir / "best.pt", payload)
            save_checkpoint(self.dir / "last.pt", payload)
        self._emit("on_epoch_end", info)
        return self.cfg.patience is not None and self.bad_evals >= self.cfg.patience

    def _epoch_decision(self) -> int:
        """Index into STOPS; computed on rank 0 alone under DDP, then broadcast."""
        if self._end_epoch():
            return STOPS.index("early_stop")
        if self.cfg.budget_minutes and self.seconds > self.cfg.budget_minutes * 60.0:
            return STOPS.index("budget")
        return 0

    def run(self, resume: str | Path | None) -> TrainResult:
        if resume is not None:
            self._restore(resume)
        self.t0 = time.perf_counter() - self.seconds
        if resume is None and self.cfg.budget_minutes:
            self._calibrate()
        elif resume is None:
            self._set_plan(self._fixed_total())
        stopped = "completed"
        try:
            while self.step < self.plan.total_steps:
                out = self._train_step()
                info = {"step": self.step, "planned_steps": self.plan.total_steps, "epoch": self.step / self.spe,
                        "logs": out.logs}
                distributed.decide_on_main(functools.partial(self._emit, "on_step", info))
                if self.step % self.spe == 0 or self.step == self.plan.total_steps:
                    distributed.sync_from_main_(self.method)  # DDP: teacher, queues, BN stats as on rank 0
                    stopped = STOPS[distributed.decide_on_main(self._epoch_decision)]
                    if stopped != "completed":
                        break
        except Cancelled:
            if self.dir is not None and self.main:
                save_checkpoint(self.dir / "last.pt", self._payload({}))
            raise
        finally:
            if self.ddp is not None:
                self.ddp.log_summary(self.step)
                self.ddp.close()
        self.seconds = time.perf_counter() - self.t0
        return TrainResult(self.cfg, self.best_metrics, self._role(self.best_metrics or {"student": 0}),
                           self.best_step, self.step, self.plan.total_steps, self.spe, self.seconds, stopped,
                           self.history, self.best_state,  # seconds: wall clock incl. validation
                           self.dir / "best.pt" if self.dir else None, self.dir / "last.pt" if self.dir else None)


def _optimizer(cfg: TrainConfig, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    o = cfg.optim
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=True)
    cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
    return cls(params, lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay)
