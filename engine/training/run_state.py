"""A run's checkpoint payload and resuming from one: everything needed to continue exactly where it stopped.

Mixed into the trainer; the payload format is the one checkpoints/ files and the jobs read.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.core.checkpoints import cpu_state, load_checkpoint, method_state, plain
from engine.core.device import rng_state, set_rng_state


class RunStateMixin:
    """_payload / _restore for the trainer (self is a training.loop._Trainer)."""

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

