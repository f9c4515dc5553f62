"""Two-stream batch sampler: n_L labeled + n_U unlabeled per batch, each stream cycling with fresh shuffles.

Stateless by design: the indices of step s are a pure function of (seed, s), so a resumed run draws
exactly the batches an uninterrupted run would have drawn. Under DDP every rank builds the same streams
(same seed); global step s is chunk s of a W-times larger batch and rank r reads the r-th slice of it, so
the ranks' shards are disjoint and together make one pass per epoch. With W = 1 nothing changes.
"""
from __future__ import annotations

import math

import numpy as np


class CyclicStream:
    """An index list read in consecutive chunks; pass k uses permutation k (seeded by (seed, tag, k))."""

    def __init__(self, indices: np.ndarray, seed: int, tag: int) -> None:
        self.indices = np.asarray(indices, dtype=np.int64)
        self.seed, self.tag = seed, tag
        self._cache: dict[int, np.ndarray] = {}

    def _perm(self, k: int) -> np.ndarray:
        if k not in self._cache:
            if len(self._cache) > 4:
                self._cache.clear()
            rng = np.random.default_rng([self.seed, self.tag, k])
            self._cache[k] = self.indices[rng.permutation(len(self.indices))]
        return self._cache[k]

    def chunk(self, step: int, size: int) -> np.ndarray:
        n = len(self.indices)
        if n == 0 or size == 0:
            return np.zeros(0, dtype=np.int64)
        pos = np.arange(step * size, (step + 1) * size)
        passes, offsets = pos // n, pos % n
        return np.array([self._perm(int(k))[o] for k, o in zip(passes, offsets)], dtype=np.int64)


class TwoStreamSampler:
    def __init__(self, labeled: np.ndarray, unlabeled: np.ndarray, labeled_batch: int, unlabeled_batch: int,
                 seed: int, pool_size: int | None = None, rank: int = 0, world_size: int = 1,
                 pool: np.ndarray | None = None) -> None:
        """pool_size: training images in total (defaults to labeled + unlabeled; smaller when the unlabeled
        stream re-reads labeled images because nothing is unlabeled). rank/world_size: this DDP rank's shard.
        pool: every training image once (default: labeled + unlabeled), for uniform pool batches."""
        if len(labeled) == 0:
            raise ValueError("no labeled training images")
        if pool is None:
            pool = np.union1d(labeled, unlabeled)
        self.pool_size = pool_size if pool_size is not None else len(labeled) + len(unlabeled)
        self.labeled = CyclicStream(labeled, seed, 1)
        self.unlabeled = CyclicStream(unlabeled, seed, 2)
        self.pool = CyclicStream(pool, seed, 3)
        self.labeled_batch, self.unlabeled_batch = labeled_batch, unlabeled_batch
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.rank, self.world_size = rank, world_size

    def batch(self, step: int, with_unlabeled: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """This rank's (labeled, unlabeled) indices of global step `step`."""
        chunk = step * self.world_size + self.rank
        unlabeled = self.unlabeled.chunk(chunk, self.unlabeled_batch) if with_unlabeled else np.zeros(0, np.int64)
        return self.labeled.chunk(chunk, self.labeled_batch), unlabeled

    def pool_batch(self, step: int) -> np.ndarray:
        """This rank's uniform pool indices of global step `step` (labeled + unlabeled batch size)."""
        return self.pool.chunk(step * self.world_size + self.rank, self.labeled_batch + self.unlabeled_batch)

    def steps_per_epoch(self, definition: str) -> int:
        """'pool': one pass over labeled + unlabeled (CONTRACTS §6); 'labeled': one labeled pass (papers).

        Counted over all ranks together: W ranks take W batches per step.
        """
        if definition == "labeled":
            return max(1, len(self.labeled.indices) // (self.labeled_batch * self.world_size))
        return max(1, math.ceil(self.pool_size / ((self.labeled_batch + self.unlabeled_batch) * self.world_size)))
