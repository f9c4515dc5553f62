"""Planning a run: the fixed iteration plan, or a budget plan fixed after timing real steps.

CONTRACTS §6: ramps and LR schedules are defined over the planned iterations, so with --budget-minutes the
plan is fixed after timing the first 20 iterations (plus one probe per later phase and one validation) and
a budgeted run still completes its ramp. Mixed into the trainer; it reads the trainer's config, method,
sampler and optimizer.
"""
from __future__ import annotations

import copy
import itertools
import logging
import time

import numpy as np

from engine.methods import Plan
from engine.methods.ramps import lr_factors
from engine.training import distributed

log = logging.getLogger("engine.train")
CALIBRATION_STEPS = 20  # CONTRACTS §6: the budget plan is fixed after timing the first 20 iterations


class PlanMixin:
    """_fixed_total / _set_plan / _calibrate for the trainer (self is a training.loop._Trainer)."""

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
        """Budget mode: time up to 20 real steps, one probe per later phase and one validation, then fix the
        plan. A small project whose epochs hold fewer steps than that calibrates on what it has (a 6-step
        plan once crashed on the 7th calibration step) and never plans past its epochs."""
        budget, start = self.cfg.budget_minutes * 60.0, time.perf_counter()
        cap = self._fixed_total() if self.cfg.epochs or self.cfg.max_steps else None
        steps = max(1, min(CALIBRATION_STEPS, cap - 1)) if cap else CALIBRATION_STEPS
        provisional = max(cap or 10**6, steps + 4)  # room for each later phase's 3 throwaway probe steps
        self._set_plan(provisional)
        warm = steps // 4  # skip allocator/first-call warm-up
        tic = time.perf_counter()
        for _ in range(steps):
            self._train_step()
            if self.step == warm:
                tic = time.perf_counter()
        costs = {self.method.phase_fractions()[0][0]: (time.perf_counter() - tic) / max(steps - warm, 1)}
        for name, frac in self.method.phase_fractions()[1:]:
            costs[name] = self._probe(min(int(frac * provisional) + 1, provisional - 3))
        tic = time.perf_counter()
        if self.main:  # DDP: the other ranks wait for rank 0's plan below
            self._evaluate()
        eval_cost = time.perf_counter() - tic
        fracs = self.method.phase_fractions() + [("end", 1.0)]
        per_step = sum((b[1] - a[1]) * costs[a[0]] for a, b in itertools.pairwise(fracs))
        left = budget - (time.perf_counter() - start)
        total = max(self.step + 1, int(left / (per_step + eval_cost / self.spe) * 0.97) + self.step)
        total = max(self.step, min(total, cap or total))
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

