"""Acquisition strategies: small registered classes that turn stored scores into a ranking of ids.

Score, then select (STYLE rule 9): the analysis job stores per-image numbers, a strategy only reads
them (through `Candidates`) and returns unlabeled image ids, best first. Pure numpy; no db.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from engine.analysis.relations import exact_knn, l2_normalize

GREEDY_MAX = 1000  # with no budget, greedy strategies rank this many, then append the rest cheaply
DENSITY_K = 10  # neighbours used for density when the caller passes no graph


@dataclass
class Candidates:
    """Everything a strategy may look at, aligned with `ids` (row i describes ids[i])."""

    ids: np.ndarray  # (N,) int64 unlabeled image ids; only these may be returned
    scores: dict[str, np.ndarray]  # name -> (N,) uncertainty, larger = more uncertain
    embeddings: np.ndarray | None = None  # (N, D) candidate features
    labeled_embeddings: np.ndarray | None = None  # (M, D) features of labeled images
    neighbors: np.ndarray | None = None  # (N, k) indices into ids, -1 for none
    neighbor_sims: np.ndarray | None = None  # (N, k) cosine similarities
    seed: int = 0
    budget: int | None = None  # how many to return; None = all, ranked

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids, dtype=np.int64).reshape(-1)
        n = len(self.ids)
        if len(np.unique(self.ids)) != n:
            raise ValueError("candidate ids must be distinct")
        for name, arr in self.scores.items():
            if len(arr) != n:
                raise ValueError(f"score {name!r} has {len(arr)} rows for {n} candidates")
        for name in ("embeddings", "neighbors", "neighbor_sims"):
            arr = getattr(self, name)
            if arr is not None and len(arr) != n:
                raise ValueError(f"{name} has {len(arr)} rows for {n} candidates")

    @property
    def n_out(self) -> int:
        """How many ids to return: min(budget, N), never negative."""
        n = len(self.ids)
        return n if self.budget is None else max(0, min(int(self.budget), n))

    def score(self, name: str) -> np.ndarray:
        """A score as float64 with NaN pushed to the bottom; a missing score is a clear error."""
        if name not in self.scores:
            have = ", ".join(sorted(self.scores)) or "none"
            raise ValueError(f"strategy needs score {name!r}, which is missing (have: {have})")
        return np.nan_to_num(np.asarray(self.scores[name], dtype=np.float64), nan=-np.inf)


class Strategy:
    """Base class: `rank(candidates)` returns distinct candidate ids, best first, len = n_out."""

    name: str = ""

    def rank(self, c: Candidates) -> np.ndarray:
        raise NotImplementedError


STRATEGIES: dict[str, type[Strategy]] = {}


def register(name: str) -> Callable[[type[Strategy]], type[Strategy]]:
    """File a strategy class under `name`; a second class under the same name is an error."""

    def decorator(cls: type[Strategy]) -> type[Strategy]:
        if name in STRATEGIES:
            raise ValueError(f"duplicate strategy name {name!r}")
        cls.name = name
        STRATEGIES[name] = cls
        return cls

    return decorator


def get_strategy(name: str) -> Strategy:
    """A fresh instance of the named strategy."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(sorted(STRATEGIES))}")
    return STRATEGIES[name]()


def sort_by_score(ids: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Positions ordered by score descending, ties by id ascending (deterministic)."""
    return np.lexsort((ids, -score))


@register("random")
class RandomStrategy(Strategy):
    """Seeded permutation; the baseline every AL curve is compared with."""

    def rank(self, c: Candidates) -> np.ndarray:
        ids = np.sort(c.ids)  # input order must not change the draw
        rng = np.random.default_rng(c.seed)
        return ids[rng.permutation(len(ids))[: c.n_out]]


class ScoreStrategy(Strategy):
    """Sort by one stored score, most uncertain first."""

    score_name: str = ""

    def rank(self, c: Candidates) -> np.ndarray:
        order = sort_by_score(c.ids, c.score(self.score_name))
        return c.ids[order[: c.n_out]]


@register("entropy")
class EntropyStrategy(ScoreStrategy):
    score_name = "entropy"


@register("margin")
class MarginStrategy(ScoreStrategy):
    score_name = "margin"


@register("least_confidence")
class LeastConfidenceStrategy(ScoreStrategy):
    score_name = "least_confidence"


@register("disagreement")
class DisagreementStrategy(ScoreStrategy):
    score_name = "disagreement"


def _require_embeddings(c: Candidates, who: str) -> np.ndarray:
    if c.embeddings is None:
        raise ValueError(f"strategy {who!r} needs candidate embeddings, which are missing")
    return l2_normalize(c.embeddings)


def _min_dist_to(x: np.ndarray, centers: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """(N,) Euclidean distance from each unit row of x to its nearest unit row of centers."""
    best = np.full(len(x), -np.inf, dtype=np.float32)
    for start in range(0, len(centers), chunk):
        best = np.maximum(best, (x @ centers[start : start + chunk].T).max(axis=1))
    return np.sqrt(np.maximum(2.0 - 2.0 * best, 0.0))  # |a-b|^2 = 2 - 2cos on the unit sphere


@register("kcenter")
class KCenterStrategy(Strategy):
    """k-center greedy core-set (Sener & Savarese 2018, https://arxiv.org/abs/1708.00489).

    Each pick is the candidate farthest from everything chosen so far (labeled set included), so a
    batch covers the embedding space; a running min-distance vector keeps it O(N * budget).
    """

    def rank(self, c: Candidates) -> np.ndarray:
        n_out = c.n_out
        if n_out == 0:
            return np.zeros(0, dtype=np.int64)
        by_id = np.argsort(c.ids, kind="stable")  # argmax ties then go to the smallest id
        ids, x = c.ids[by_id], _require_embeddings(c, self.name)[by_id]
        labeled = c.labeled_embeddings
        picks: list[int] = []
        if labeled is not None and len(labeled):
            min_dist = _min_dist_to(x, l2_normalize(labeled))
        else:  # no labeled set: start from the most central candidate
            first = int(np.argmin(np.linalg.norm(x - x.mean(axis=0), axis=1)))
            picks.append(first)
            min_dist = np.sqrt(np.maximum(2.0 - 2.0 * (x @ x[first]), 0.0))
        min_dist = min_dist.astype(np.float64)
        n_greedy = n_out if c.budget is not None else min(n_out, GREEDY_MAX)
        for p in picks:
            min_dist[p] = -np.inf
        while len(picks) < n_greedy:
            p = int(np.argmax(min_dist))
            picks.append(p)
            min_dist = np.minimum(min_dist, np.sqrt(np.maximum(2.0 - 2.0 * (x @ x[p]), 0.0)))
            min_dist[picks] = -np.inf
        order = np.asarray(picks[:n_out], dtype=np.int64)
        if len(order) < n_out:  # the rest by distance to the chosen set, farthest first
            rest = np.setdiff1d(np.arange(len(ids)), order)
            rest = rest[sort_by_score(ids[rest], min_dist[rest])]
            order = np.concatenate([order, rest])[:n_out]
        return ids[order]


def _density(c: Candidates, x: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N,) mean neighbour similarity plus the graph it came from (given, or exact kNN on x)."""
    n = len(c.ids)
    if c.neighbors is not None and c.neighbor_sims is not None:
        nbr = np.asarray(c.neighbors, dtype=np.int64)
        sims = np.asarray(c.neighbor_sims, dtype=np.float64)
    elif x is not None:
        nbr, sims = exact_knn(x, DENSITY_K)
        sims = sims.astype(np.float64)
    else:  # no graph, no features: flat density, no diversity penalty
        return np.ones(n), np.zeros((n, 0), np.int64), np.zeros((n, 0))
    valid = (nbr >= 0) & (nbr < n) & np.isfinite(sims)
    count = valid.sum(axis=1)
    density = np.where(count > 0, np.where(valid, sims, 0.0).sum(axis=1) / np.maximum(count, 1), 0.0)
    return np.clip(density, -1.0, 1.0), np.where(valid, nbr, -1), np.where(valid, sims, 0.0)


def _symmetric_graph(nbr: np.ndarray, sims: np.ndarray) -> sparse.csr_matrix:
    """Undirected (N, N) similarity graph: a pick penalises cases it lists and cases that list it."""
    n = len(nbr)
    rows = np.repeat(np.arange(n), nbr.shape[1])
    cols, vals = nbr.reshape(-1), np.clip(sims.reshape(-1), 0.0, 1.0)
    keep = (cols >= 0) & (cols != rows)
    g = sparse.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(n, n))
    return g.maximum(g.T).tocsr()


@register("relation")
class RelationStrategy(Strategy):
    """Relation-aware: uncertainty x local density, with a greedy penalty on the picks' neighbours.

    uncertainty = entropy, or mean(entropy, disagreement) when a teacher exists; density = mean
    cosine similarity to the kNN-graph neighbours, mapped to weight (1 + density) / 2 in [0, 1] so
    representative cases win ties without a flat density erasing the uncertainty order. After each
    pick, every graph neighbour's score is multiplied by (1 - sim), so a batch is not made of
    near-duplicates.
    """

    def rank(self, c: Candidates) -> np.ndarray:
        n_out = c.n_out
        if n_out == 0:
            return np.zeros(0, dtype=np.int64)
        uncertainty = c.score("entropy")
        if "disagreement" in c.scores:
            uncertainty = (uncertainty + c.score("disagreement")) / 2.0
        x = l2_normalize(c.embeddings) if c.embeddings is not None else None
        density, nbr, sims = _density(c, x)
        graph = _symmetric_graph(nbr, sims)
        by_id = np.argsort(c.ids, kind="stable")  # argmax ties go to the smallest id
        pos_of = np.empty_like(by_id)
        pos_of[by_id] = np.arange(len(by_id))
        uncertainty = np.where(np.isfinite(uncertainty), uncertainty, 0.0)  # NaN scores rank last
        score = (uncertainty * (1.0 + density) / 2.0)[by_id]  # >= 0, so penalties keep it finite
        ids = c.ids[by_id]
        taken = np.zeros(len(ids), dtype=bool)
        n_greedy = n_out if c.budget is not None else min(n_out, GREEDY_MAX)
        picks: list[int] = []
        for _ in range(n_greedy):
            p = int(np.argmax(np.where(taken, -np.inf, score)))
            picks.append(p)
            taken[p] = True
            row = graph.getrow(by_id[p])  # graph is in the caller's order
            score[pos_of[row.indices]] *= 1.0 - row.data
        order = np.asarray(picks, dtype=np.int64)
        if len(order) < n_out:
            rest = np.setdiff1d(np.arange(len(ids)), order)
            rest = rest[sort_by_score(ids[rest], score[rest])]
            order = np.concatenate([order, rest])[:n_out]
        return ids[order]
