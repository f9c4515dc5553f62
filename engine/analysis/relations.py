"""Cosine k-nearest-neighbour graph over embeddings: exact brute force where it wins, NN-descent above.

Measured (CONTRACTS §6): brute force takes seconds at 10k x 512 where NN-descent takes ~40 s in a
fresh process, so exact is the default up to EXACT_MAX rows. The graph is stored as relation edges
and handed to UMAP (engine.analysis.projection) so neighbours are computed once.
"""
from __future__ import annotations

import numpy as np

EXACT_MAX = 50_000  # above this the O(N^2) matmul stops beating NN-descent on a small CPU


def l2_normalize(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32); all-zero rows stay zero rather than becoming NaN."""
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.nan_to_num(x / np.maximum(norms, 1e-12))


def _empty(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0), dtype=np.float32)


def exact_knn(features: np.ndarray, k: int, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force cosine kNN -> (indices (N, k) int64, sims (N, k) float32), self excluded, best first.

    k is clipped to N - 1. Rows are processed in chunks so memory stays at chunk x N floats.
    """
    x = l2_normalize(features)
    n = x.shape[0]
    k = int(min(k, n - 1))
    if k <= 0:
        return _empty(n)
    indices = np.empty((n, k), dtype=np.int64)
    sims = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        block = x[start:stop] @ x.T  # (b, N)
        rows = np.arange(stop - start)
        block[rows, rows + start] = -np.inf  # exclude self
        part = np.argpartition(block, n - k, axis=1)[:, n - k :]  # (b, k) unordered top k
        part_sims = np.take_along_axis(block, part, axis=1)
        order = np.argsort(-part_sims, axis=1, kind="stable")
        indices[start:stop] = np.take_along_axis(part, order, axis=1)
        sims[start:stop] = np.take_along_axis(part_sims, order, axis=1)
    return indices, sims


def _drop_self(idx: np.ndarray, dist: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own index from an approximate (N, k+1) graph, keeping k columns."""
    n = idx.shape[0]
    is_self = idx == np.arange(n)[:, None]
    is_self[~is_self.any(axis=1), -1] = True  # a row that missed itself drops its farthest column
    cols = np.argsort(is_self, axis=1, kind="stable")[:, :k]  # kept columns first, order preserved
    return np.take_along_axis(idx, cols, axis=1), np.take_along_axis(dist, cols, axis=1)


def approx_knn(features: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """pynndescent cosine kNN with the same contract as exact_knn (self excluded, best first)."""
    from pynndescent import NNDescent  # imported here: slow (numba) and only needed for big sets

    x = l2_normalize(features)
    n = x.shape[0]
    k = int(min(k, n - 1))
    if k <= 0:
        return _empty(n)
    index = NNDescent(x, metric="cosine", n_neighbors=k + 1, random_state=seed)
    idx, dist = index.neighbor_graph
    idx, dist = _drop_self(np.asarray(idx), np.asarray(dist), k)
    sims = np.where(idx >= 0, 1.0 - dist, 0.0).astype(np.float32)
    order = np.argsort(-sims, axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1).astype(np.int64), np.take_along_axis(sims, order, axis=1)


def knn_graph(features: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Exact kNN up to EXACT_MAX rows, NN-descent above; same return shape either way."""
    if len(features) <= EXACT_MAX:
        return exact_knn(features, k)
    return approx_knn(features, k, seed=seed)
