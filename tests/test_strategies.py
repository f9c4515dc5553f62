"""Every registered strategy returns distinct candidate ids; each one's own behaviour, on tiny arrays."""
import numpy as np
import pytest

from engine.analysis.relations import exact_knn
from engine.analysis.strategies import STRATEGIES, Candidates, Strategy, get_strategy, register
from engine.analysis.uncertainty import scores

EXPECTED = {"random", "entropy", "margin", "least_confidence", "disagreement", "kcenter", "relation"}


def make_candidates(n: int = 40, budget: int | None = 7, seed: int = 0) -> Candidates:
    rng = np.random.default_rng(seed)
    ids = rng.choice(10_000, size=n, replace=False).astype(np.int64)
    probs = rng.dirichlet(np.ones(3), size=n)
    emb = rng.standard_normal((n, 8)).astype(np.float32)
    nbr, sims = exact_knn(emb, 5)
    return Candidates(
        ids=ids,
        scores=scores(probs, "multiclass", teacher_probs=rng.dirichlet(np.ones(3), size=n)),
        embeddings=emb,
        labeled_embeddings=rng.standard_normal((6, 8)).astype(np.float32),
        neighbors=nbr,
        neighbor_sims=sims,
        seed=seed,
        budget=budget,
    )


def test_registry_holds_exactly_the_contract_names() -> None:
    assert set(STRATEGIES) == EXPECTED


def test_duplicate_and_unknown_names_fail() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        register("entropy")(type("Again", (Strategy,), {}))
    with pytest.raises(ValueError, match="unknown"):
        get_strategy("nope")


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("budget", [1, 7, 40, 100, None])
def test_distinct_subset_of_candidates_with_budget_length(name: str, budget: int | None) -> None:
    c = make_candidates(budget=budget)
    out = get_strategy(name).rank(c)
    assert out.dtype == np.int64
    assert len(out) == min(budget if budget is not None else 40, 40)
    assert len(set(out.tolist())) == len(out)
    assert set(out.tolist()) <= set(c.ids.tolist())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_deterministic_and_zero_budget(name: str) -> None:
    a, b = get_strategy(name).rank(make_candidates()), get_strategy(name).rank(make_candidates())
    np.testing.assert_array_equal(a, b)
    assert len(get_strategy(name).rank(make_candidates(budget=0))) == 0


def test_random_is_seeded() -> None:
    rank = get_strategy("random").rank
    np.testing.assert_array_equal(rank(make_candidates(seed=0)), rank(make_candidates(seed=0)))
    c1 = make_candidates(seed=0, budget=None)
    c2 = make_candidates(seed=0, budget=None)
    c2.seed = 1
    assert not np.array_equal(rank(c1), rank(c2))


@pytest.mark.parametrize("name", ["entropy", "margin", "least_confidence", "disagreement"])
def test_score_strategies_pick_the_max_first(name: str) -> None:
    c = make_candidates()
    out = get_strategy(name).rank(c)
    assert out[0] == c.ids[np.argmax(c.scores[name])]
    s = dict(zip(c.ids.tolist(), c.scores[name].tolist()))
    assert [s[i] for i in out] == sorted((s[i] for i in out), reverse=True)


def test_ties_break_by_id() -> None:
    c = Candidates(ids=np.array([9, 3, 5]), scores={"entropy": np.array([0.5, 0.5, 0.5])}, embeddings=None,
                   labeled_embeddings=None, neighbors=None, neighbor_sims=None)
    np.testing.assert_array_equal(get_strategy("entropy").rank(c), [3, 5, 9])


def test_missing_score_names_it() -> None:
    c = make_candidates()
    del c.scores["disagreement"]
    with pytest.raises(ValueError, match="disagreement"):
        get_strategy("disagreement").rank(c)


def test_kcenter_covers_two_clusters_first() -> None:
    rng = np.random.default_rng(1)
    a = np.array([1.0, 0, 0, 0]) + 0.01 * rng.standard_normal((15, 4))
    b = np.array([0, 0, 1.0, 0]) + 0.01 * rng.standard_normal((15, 4))
    emb = np.concatenate([a, b]).astype(np.float32)
    ids = np.arange(100, 130)
    c = Candidates(ids=ids, scores={}, embeddings=emb, labeled_embeddings=None, neighbors=None,
                   neighbor_sims=None, budget=2)
    out = get_strategy("kcenter").rank(c)
    assert {int(i) < 115 for i in out} == {True, False}
    # starting from a labeled point in cluster a, the first pick must come from cluster b
    c.labeled_embeddings, c.budget = a[:1].astype(np.float32), 1
    assert get_strategy("kcenter").rank(c)[0] >= 115


def test_relation_spreads_a_batch_over_near_duplicates() -> None:
    rng = np.random.default_rng(2)
    base = rng.standard_normal(16)
    dups = base + 0.01 * rng.standard_normal((10, 16))  # 10 near-copies of one case
    diverse = rng.standard_normal((10, 16))
    emb = np.concatenate([dups, diverse]).astype(np.float32)
    nbr, sims = exact_knn(emb, 9)
    ids = np.arange(20, dtype=np.int64)
    c = Candidates(ids=ids, scores={"entropy": np.full(20, 0.8)}, embeddings=emb, labeled_embeddings=None,
                   neighbors=nbr, neighbor_sims=sims, budget=5)
    out = get_strategy("relation").rank(c)
    assert (out < 10).sum() <= 1, out  # not a batch of near-duplicates
    # without the graph (embeddings only) it builds its own and behaves the same way
    c.neighbors = c.neighbor_sims = None
    assert (get_strategy("relation").rank(c) < 10).sum() <= 1


def test_relation_prefers_uncertain_when_density_is_flat() -> None:
    c = Candidates(ids=np.arange(5), scores={"entropy": np.array([0.1, 0.9, 0.3, 0.5, 0.2])}, embeddings=None,
                   labeled_embeddings=None, neighbors=None, neighbor_sims=None)
    np.testing.assert_array_equal(get_strategy("relation").rank(c), [1, 3, 2, 4, 0])


def test_candidates_reject_misaligned_inputs() -> None:
    with pytest.raises(ValueError, match="distinct"):
        Candidates(ids=np.array([1, 1]), scores={}, embeddings=None, labeled_embeddings=None,
                   neighbors=None, neighbor_sims=None)
    with pytest.raises(ValueError, match="entropy"):
        Candidates(ids=np.array([1, 2]), scores={"entropy": np.ones(3)}, embeddings=None,
                   labeled_embeddings=None, neighbors=None, neighbor_sims=None)
