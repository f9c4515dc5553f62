"""What the training loop adds under DDP: the wrapped student, per-rank randomness and a few per-step guards.

The loop in engine.training.loop creates a `DDPRun` only when a process group with more than one rank exists, so
single-process training never touches this module's code paths.
"""
from __future__ import annotations

import hashlib
import logging

import numpy as np
import torch

from engine.loaders.samplers import TwoStreamSampler
from engine.methods import SSLMethod
from engine.training import distributed

log = logging.getLogger("engine.train")


class DDPRun:
    """The student wrapped in DistributedDataParallel (the EMA teacher keeps reading the plain module)."""

    def __init__(self, method: SSLMethod, device: torch.device, seed: int) -> None:
        self.rank, self.world, self.seed = distributed.rank(), distributed.world_size(), seed
        self.method = method
        self.wrapper = distributed.wrap_ddp(method.student, device)  # broadcasts rank 0's weights
        method.use_student_wrapper(self.wrapper)
        owned = {id(p) for p in method.student.parameters()}
        # trainable tensors outside the student (S2MTS2's query head): DDP does not see them, we average them
        self.extra = [p for p in method.parameters() if p.requires_grad and id(p) not in owned]
        self.drawn = np.zeros(2, dtype=np.int64)  # labeled, unlabeled indices this rank trained on
        self.reseed(0)

    def reseed(self, step: int) -> None:
        """Rank > 0 gets its own global torch RNG (dropout), else every rank would drop the same units."""
        if self.rank:
            torch.manual_seed(int(np.random.SeedSequence([self.seed, self.rank, step]).generate_state(1)[0]))

    def aug_seed(self, base: int) -> int:
        """Per-rank augmentation seed; rank 0 keeps the single-process value."""
        return base + (self.rank << 40)

    def count(self, labeled: torch.Tensor, unlabeled: torch.Tensor) -> None:
        self.drawn += (len(labeled), len(unlabeled))

    def touch_all(self, loss: torch.Tensor) -> torch.Tensor:
        """loss + 0 * every student parameter: each gets a gradient every step (exact zeros added), so DDP
        never waits for a parameter a phase leaves unused (a U-Net's projection head in a supervised step)."""
        return loss + 0.0 * sum(p.sum() for p in self.method.student.parameters() if p.requires_grad)

    def after_backward(self) -> None:
        distributed.average_gradients_(self.extra)

    def log_shard(self, sampler: TwoStreamSampler, steps_per_epoch: int) -> None:
        """Each rank states the size of its share of one epoch's index order (disjoint across ranks)."""
        labeled = np.concatenate([sampler.batch(s)[0] for s in range(steps_per_epoch)])
        unlabeled = np.concatenate([sampler.batch(s)[1] for s in range(steps_per_epoch)])
        log.info("ddp rank %d/%d shard: %d labeled + %d unlabeled indices per epoch (%d steps per epoch)",
                 self.rank, self.world, len(labeled), len(unlabeled), steps_per_epoch)

    def log_summary(self, steps: int) -> None:
        digest = hashlib.sha1()
        for tensor in self.method.student.state_dict().values():
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        log.info("ddp rank %d/%d done: %d steps, trained on %d labeled + %d unlabeled indices, student sha1 %s",
                 self.rank, self.world, steps, self.drawn[0], self.drawn[1], digest.hexdigest()[:16])

    def close(self) -> None:
        self.method.use_student_wrapper(None)
