"""s2mts2: Self-supervised Mean Teacher, Liu, Tian et al. MLMI 2021, https://arxiv.org/abs/2103.03629 (METHODS §3).

Stage 1: JCL contrastive pre-training of the student (query) against an EMA key encoder on the whole pool,
no labels. At our scale (METHODS §8): batch negatives plus a small queue of key means, M = 4 key views.
Stage-1 batches are drawn uniformly over the pool (one epoch = one pool pass), queue entries that came from
the query's own image are masked out of its negatives, and the keys use Shuffle-BN (see `_keys`).
Stage 2: Mean Teacher fine-tuning; the teacher restarts as an exact copy of the pre-trained student (P9).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from engine.methods.base import METHODS, Batch, Plan, StepOutput
from engine.methods.ema import copy_into, ema_update
from engine.methods.losses import jcl_loss
from engine.methods.mean_teacher import MeanTeacher, MeanTeacherParams


@dataclass(frozen=True)
class S2MTS2Params(MeanTeacherParams):
    pretrain_fraction: float = 0.25  # share of the planned steps spent in stage 1 (self-supervised)
    key_views: int = 4  # M; with M = 2 the key covariance has rank 1 (P11)
    tau: float = 0.2  # JCL's value; S2MTS2 used 0.07 with a 65k queue
    jcl_strength: float = 0.25  # lambda_max, ramped linearly over stage 1 (JCL default; S2MTS2 code 2.0)
    key_momentum: float = 0.99  # m; 0.999 needs far more steps than a CPU run has
    proj_dim: int = 128
    queue_size: int = 1024  # FIFO of past key means; 0 = batch negatives only
    shuffle_bn_groups: int = 2  # BN sub-batches of the Shuffle-BN emulation; 1 = one BN batch (leaks, MoCo §3.3)
    # stage 1 uses no labels: a file to reuse it from (the run skips stage 1), or one to save it to
    stage1_load: str | None = None
    stage1_save: str | None = None
    ramp_kind: str = "linear"  # S2MTS2 fine-tuning ramps linearly (P12)


class ProjectionHead(nn.Sequential):
    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__(nn.Linear(in_dim, in_dim), nn.ReLU(inplace=True), nn.Linear(in_dim, out_dim))


@METHODS.register("s2mts2")
class S2MTS2(MeanTeacher):
    """Stage 1 trains student + projection head with JCL; stage 2 is MeanTeacher.train_step unchanged."""

    params_cls = S2MTS2Params

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        dim = self.student.num_features
        self.query_head = ProjectionHead(dim, self.params.proj_dim)
        self.key_head = copy.deepcopy(self.query_head).requires_grad_(False)
        self.register_buffer("queue", F.normalize(torch.randn(self.params.queue_size, self.params.proj_dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        # dataset index of each queue entry's image (-1: the random initial entries), to mask own-image negatives
        self.register_buffer("queue_ids", torch.full((self.params.queue_size,), -1, dtype=torch.long))
        self.pretrain_steps = 0
        self.stage1_reused = self._load_stage1()

    @property
    def pretrain_fraction(self) -> float:
        """0 when stage 1 came from the cache: the whole run is fine-tuning."""
        return 0.0 if self.stage1_reused else self.params.pretrain_fraction

    def _stage1_modules(self) -> dict[str, nn.Module]:
        return {"student": self.student, "teacher": self.teacher, "query_head": self.query_head,
                "key_head": self.key_head}

    def _load_stage1(self) -> bool:
        path = self.params.stage1_load
        if not path:
            return False
        if not Path(path).exists():
            raise FileNotFoundError(f"S²MTS² stage-1 cache {path} is gone; train without stage1_load")
        state = torch.load(path, map_location="cpu", weights_only=True)
        for name, module in self._stage1_modules().items():
            module.load_state_dict(state[name])
        if state["queue"].shape == self.queue.shape:
            self.queue.copy_(state["queue"])
            self.queue_ids.copy_(state["queue_ids"])
        return True

    def _save_stage1(self) -> None:
        """Written once, right after the last stage-1 step (after_step: probes never reach it), atomically."""
        path = Path(self.params.stage1_save)  # type: ignore[arg-type]
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {name: {k: v.detach().cpu() for k, v in m.state_dict().items()}
                 for name, m in self._stage1_modules().items()}
        state.update(queue=self.queue.detach().cpu(), queue_ids=self.queue_ids.detach().cpu())
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(path)

    def set_plan(self, plan: Plan) -> None:
        self.plan = plan
        self.pretrain_steps = round(self.pretrain_fraction * plan.total_steps)
        self.plan_consistency(plan, offset=self.pretrain_steps)

    def phase_fractions(self) -> list[tuple[str, float]]:
        p, pre = self.params, self.pretrain_fraction
        start = pre + p.warmup_fraction * (1.0 - pre)
        stage2 = [("warm_start", pre)] if p.warmup_fraction > 0 else []
        phases = [("pretrain", 0.0), *stage2, ("consistency", start)]
        return [(name, frac) for name, frac in phases if pre > 0 or name != "pretrain"]

    def needs_unlabeled(self, step: int) -> bool:
        return step >= self.ssl_start

    def pool_batch(self, step: int) -> bool:
        return step < self.pretrain_steps  # stage 1 uses no labels: sample the pool uniformly

    def lr_restarts(self) -> tuple[int, ...]:
        return (self.pretrain_steps,)

    def train_step(self, batch: Batch) -> StepOutput:
        if batch.step < self.pretrain_steps:
            return self.pretrain_step(batch)
        if batch.step == self.pretrain_steps:
            copy_into(self.teacher, self.student)  # stage 2: teacher = exact copy of the pre-trained student
        return super().train_step(batch)

    def pretrain_step(self, batch: Batch) -> StepOutput:
        p, gen = self.params, batch.gen
        pool = torch.cat([batch.labeled, batch.unlabeled])  # a uniform pool batch; labels ignored
        ids = _row_ids(batch, len(pool), pool.device)
        with torch.no_grad():  # momentum update BEFORE the key forward, as MoCo/S2MTS2
            ema_update(self.teacher, self.student, p.key_momentum, buffers=False)
            ema_update(self.key_head, self.query_head, p.key_momentum, buffers=False)
            keys = torch.stack([self._keys(pool, gen) for _ in range(p.key_views)], dim=1)  # (B, M, d)
        self.student.train()
        query = F.normalize(torch.cat([self.query_head(self.student_forward(chunk)["feat"]).float()
                                       for chunk in self._query_chunks(self.views.strong(pool, gen))]), dim=1)
        mu = keys.mean(dim=1)  # (B, d)
        negatives = torch.cat([mu, self.queue.float()])  # (B + K, d)
        exclude = torch.zeros(len(pool), len(negatives), dtype=torch.bool, device=pool.device)
        exclude[:, : len(pool)] = torch.eye(len(pool), dtype=torch.bool, device=pool.device)
        exclude[:, len(pool):] = self.queue_ids[None, :] == ids[:, None]  # an older key mean of the same image
        strength = p.jcl_strength * (batch.step + 1) / max(self.pretrain_steps, 1)
        loss = jcl_loss(query, keys, negatives, p.tau, strength, exclude)
        self._enqueue(mu, ids)
        return StepOutput(loss, {"loss_jcl": float(loss.detach()), "jcl_strength": strength})

    def _query_chunks(self, view: torch.Tensor) -> list[torch.Tensor]:
        """The query's BN batches: G contiguous sub-batches on one process; under DDP each rank's batch is one
        (one forward per step through the DDP wrapper, as MoCo's per-GPU queries)."""
        groups = 1 if self.__dict__.get("_student_wrapper") is not None else self.params.shuffle_bn_groups
        return list(view.chunk(max(1, min(groups, len(view)))))

    def _keys(self, pool: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """One key view, (B, d), with Shuffle-BN: the images are permuted, split into G sub-batches that each
        get their own BN statistics, and put back in order — so a key's BN batch is not its query's.

        With G = 2 a key shares half its BN batch with its query's sub-batch (MoCo with 2 GPUs); G = 1 is the
        plain per-batch key view, where query and key see the same images' statistics (the leak MoCo names).
        """
        view = self.views.strong(pool, gen)
        groups = max(1, min(self.params.shuffle_bn_groups, len(pool)))
        order = torch.randperm(len(pool), generator=gen, device=gen.device).to(pool.device)
        self.teacher.train()
        feats = torch.cat([self.teacher(chunk)["feat"] for chunk in view[order].chunk(groups)])
        keys = torch.empty_like(feats)
        keys[order] = feats  # back to the batch order
        return F.normalize(self.key_head(keys).float(), dim=1)

    @torch.no_grad()
    def _enqueue(self, means: torch.Tensor, ids: torch.Tensor) -> None:
        size = self.queue.shape[0]
        if size == 0:
            return
        means, ids = means[-size:], ids[-size:]
        idx = (self.queue_ptr + torch.arange(len(means), device=means.device)) % size
        self.queue[idx] = means.to(self.queue.dtype)
        self.queue_ids[idx] = ids
        self.queue_ptr.copy_((self.queue_ptr + len(means)) % size)

    def after_step(self, step: int) -> None:
        if step >= self.pretrain_steps:
            super().after_step(step)
        elif step + 1 == self.pretrain_steps and self.params.stage1_save and _is_main():
            self._save_stage1()


def _is_main() -> bool:
    return not torch.distributed.is_available() or not torch.distributed.is_initialized() or \
        torch.distributed.get_rank() == 0


def _row_ids(batch: Batch, n: int, device: torch.device) -> torch.Tensor:
    """Dataset index of each pool row; without indices (a hand-made Batch) rows count as distinct images."""
    parts = [batch.labeled_idx, batch.unlabeled_idx]
    if any(part is None for part in parts):
        return -2 - torch.arange(n, device=device)  # never equal to a queue id (>= -1)
    return torch.cat([part.to(device) for part in parts if part is not None])
