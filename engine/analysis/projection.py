"""Seeded 2-D projection of embeddings for the Explore page: UMAP (cosine), PCA for tiny sets.

UMAP is slow on a cold process because numba compiles on first use (CONTRACTS §6: ~64 s vs ~10 s
warm at 10k x 512), so the worker calls `warm_up()` once in a background thread, and the analysis
job passes the exact kNN graph it already stored so UMAP skips its own NN-descent.
"""
from __future__ import annotations

import threading
import warnings

import numpy as np

from engine.analysis.relations import exact_knn, l2_normalize

PCA_BELOW = 50  # fewer points than this: UMAP's graph is too thin to mean anything
WARM_ROWS = 4096  # umap-learn takes the NN-descent path (the one to compile) from 4,096 rows
WARM_DIMS = 32

_warm_lock = threading.Lock()
_warm_done = False


def _pad2(coords: np.ndarray) -> np.ndarray:
    """(N, <=2) -> (N, 2) float32, zero-filling a missing second axis."""
    out = np.zeros((len(coords), 2), dtype=np.float32)
    out[:, : coords.shape[1]] = coords
    return out


def _pca(x: np.ndarray, seed: int) -> np.ndarray:
    """PCA to 2-D on unit rows (cosine geometry, like the UMAP path)."""
    from sklearn.decomposition import PCA

    n, d = x.shape
    if n <= 2:  # PCA is undefined or degenerate: put the points on a line
        return _pad2(np.linspace(-1.0, 1.0, n, dtype=np.float32)[:, None] if n == 2 else np.zeros((n, 1)))
    n_comp = min(2, n - 1, d)
    coords = PCA(n_components=n_comp, random_state=seed, svd_solver="full").fit_transform(x)
    return _pad2(np.nan_to_num(coords))


def _umap_knn(
    knn: tuple[np.ndarray, np.ndarray], n: int, n_neighbors: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """exact_knn output -> umap-learn's precomputed_knn arrays (self first, distance = 1 - sim).

    Returns (indices int32, distances float32, n_neighbors to use). Indices are int32 and distances
    float32 to match pynndescent's output, so warm_up's NN-descent fit compiles the same numba
    signatures. umap-learn 0.5.x ignores a graph with fewer columns than n_neighbors and, below
    4,096 rows, does not prune extra columns itself, so both are handled here.
    """
    idx, sims = np.asarray(knn[0]), np.asarray(knn[1], dtype=np.float32)
    if idx.shape != sims.shape or idx.shape[0] != n:
        raise ValueError(f"knn arrays {idx.shape}/{sims.shape} do not match {n} points")
    n_neighbors = min(n_neighbors, idx.shape[1] + 1)
    self_col = np.arange(n, dtype=np.int32)[:, None]
    indices = np.concatenate([self_col, idx.astype(np.int32)], axis=1)[:, :n_neighbors]
    dists = np.concatenate([np.zeros((n, 1), np.float32), 1.0 - sims], axis=1)[:, :n_neighbors]
    dists = np.where(indices >= 0, np.maximum(dists, 0.0), np.inf).astype(np.float32)
    return np.ascontiguousarray(indices), np.ascontiguousarray(dists), n_neighbors


def project_2d(
    features: np.ndarray,
    seed: int = 0,
    knn: tuple[np.ndarray, np.ndarray] | None = None,
    n_neighbors: int = 15,
    n_epochs: int | None = None,
) -> tuple[np.ndarray, str]:
    """(N, D) features -> ((N, 2) float32 coordinates, 'umap' | 'pca').

    `knn` is exact_knn's (indices, sims) for these rows (self excluded); with it UMAP skips
    NN-descent. `n_epochs` None keeps umap-learn's default (500 up to 10k rows, 200 above).
    """
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {x.shape}")
    n = len(x)
    x = l2_normalize(x)
    if n < PCA_BELOW or x.shape[1] < 2:
        return _pca(x, seed), "pca"
    import umap  # imported here: heavy (numba), and only the worker needs it

    precomputed: tuple = (None, None, None)
    nn = min(n_neighbors, n - 1)
    if knn is not None:
        indices, dists, nn = _umap_knn(knn, n, nn)
        precomputed = (indices, dists, None)
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=nn,
        metric="cosine",
        random_state=seed,
        n_epochs=n_epochs,
        precomputed_knn=precomputed,
    )
    with warnings.catch_warnings():  # "no NNDescent index" and "n_jobs overridden by seed" are expected
        warnings.simplefilter("ignore", UserWarning)
        coords = reducer.fit_transform(x)
    coords = np.asarray(coords, dtype=np.float32)
    if coords.shape != (n, 2) or not np.isfinite(coords).all():
        return _pca(x, seed), "pca"
    return coords, "umap"


def warm_up(seed: int = 0) -> None:
    """Fit UMAP once in this process so numba has compiled before the first real analysis.

    Runs both paths the worker uses: umap-learn's own NN-descent (>= 4,096 rows, per CONTRACTS §6)
    and a fit on a precomputed exact graph. Idempotent and thread-safe: later calls return at once,
    concurrent ones wait for the first.
    """
    global _warm_done
    with _warm_lock:
        if _warm_done:
            return
        import umap

        x = np.random.default_rng(seed).standard_normal((WARM_ROWS, WARM_DIMS)).astype(np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            umap.UMAP(n_components=2, metric="cosine", random_state=seed, n_epochs=20).fit(x)
        project_2d(x, seed=seed, knn=exact_knn(x, 15), n_epochs=20)
        _warm_done = True
