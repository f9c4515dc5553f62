"""bench al: selection never re-picks, curves grow by --step, round 0 is shared, re-runs are resumable."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from engine.bench import al
from engine.bench.curves import labels_to_reach


def _blobs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two classes of 16x16 noisy images: a bright blob top-left (class 0) or bottom-right (class 1)."""
    labels = rng.permutation(np.arange(n) % 2)
    images = rng.normal(60, 20, (n, 16, 16))
    for i, label in enumerate(labels):
        r, c = (4, 4) if label == 0 else (11, 11)
        images[i, r - 2 : r + 3, c - 2 : c + 3] += rng.uniform(60, 160)
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.uint8)


@pytest.fixture
def trio(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    folder = tmp_path / "data"
    folder.mkdir()
    for split, n in (("train", 120), ("val", 40), ("test", 40)):
        images, labels = _blobs(n, rng)
        np.savez(folder / f"{split}.npz", images=images, labels=labels)
    return folder


def _args(data: Path, out: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    al.add_arguments(parser)
    return parser.parse_args(["--data", str(data), "--out", str(out), "--strategies", "random,relation",
                              "--start", "10", "--step", "10", "--rounds", "2", "--seeds", "0",
                              "--epochs", "1", "--threads", "1", "--device", "cpu"])


def _pool(n: int, seed: int) -> al.PoolView:
    rng = np.random.default_rng(seed)
    student = rng.dirichlet([1.0, 1.0], n).astype(np.float32)
    teacher = rng.dirichlet([1.0, 1.0], n).astype(np.float32)
    return al.PoolView(n, teacher, student, rng.normal(size=(n, 8)).astype(np.float32))


@pytest.mark.parametrize("strategy", ["random", "entropy", "disagreement", "kcenter", "relation"])
def test_select_batch_adds_step_new_distinct_indices(strategy: str) -> None:
    labeled = np.arange(0, 60, 6)
    for round_ in range(1, 4):
        new = al.select_batch(strategy, labeled, _pool(60, round_), 7, seed=round_)
        assert len(new) == 7 and len(np.unique(new)) == 7
        assert not np.isin(new, labeled).any()
        labeled = np.sort(np.concatenate([labeled, new]))
    assert len(labeled) == 10 + 3 * 7
    with pytest.raises(ValueError):
        al.select_batch(strategy, labeled, _pool(60, 0), 60 - len(labeled) + 1, seed=0)


def test_random_needs_no_model_output() -> None:
    new = al.select_batch("random", np.arange(5), al.PoolView(30), 5, seed=1)
    assert len(set(new)) == 5 and min(new) >= 5
    with pytest.raises(ValueError, match="entropy"):
        al.select_batch("entropy", np.arange(5), al.PoolView(30), 5, seed=1)


def test_initial_labels_exact_stratified_seeded() -> None:
    labels = np.array([0] * 30 + [1] * 90)
    first = al.initial_labels(labels, 10, seed=3)
    assert len(first) == len(np.unique(first)) == 10
    assert set(labels[first]) == {0, 1}
    assert np.array_equal(first, al.initial_labels(labels, 10, seed=3))
    assert not np.array_equal(first, al.initial_labels(labels, 10, seed=4))
    assert len(al.initial_labels(labels, 7, seed=0)) == 7  # rounding 7/120 per class would not add up


def test_labels_to_reach() -> None:
    curve = {50: 0.80, 100: 0.86, 150: 0.85, 200: 0.90}
    assert labels_to_reach(curve, 0.85) == 100
    assert labels_to_reach(curve, 0.95) is None


def test_run_writes_curves_and_resumes(trio: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert al.run(_args(trio, out)) == 0
    results = json.loads((out / "results.json").read_text())
    rows = results["rows"]
    assert len(results["runs"]) == 1 and len(rows) == 6
    contract = {"run", "method", "strategy", "seed", "round", "labels", "val_auc", "test_auc", "budget_minutes",
                "epochs_run", "train_seconds"}
    for strategy in ("random", "relation"):
        curve = sorted((r for r in rows if r["strategy"] == strategy), key=lambda r: r["round"])
        assert contract <= set(curve[0])
        assert [r["round"] for r in curve] == [0, 1, 2] and [r["labels"] for r in curve] == [10, 20, 30]
        assert all(0.0 <= r["test_auc"] <= 1.0 and r["method"] == "src_mt" for r in curve)
        picks = json.loads((out / "cells" / f"{strategy}_s0.json").read_text())["picks"]
        assert [len(p) for p in picks] == [10, 10, 10]
        flat = [i for p in picks for i in p]
        assert len(set(flat)) == 30  # never re-picks a labeled index
    first = {r["strategy"]: (r["test_auc"], r["val_auc"]) for r in rows if r["round"] == 0}
    assert first["random"] == first["relation"]  # round 0 shared
    picks = {s: json.loads((out / "cells" / f"{s}_s0.json").read_text())["picks"][0] for s in first}
    assert picks["random"] == picks["relation"]
    assert (out / "results.md").read_text().startswith("# bench al")
    assert (out / "learning_curve.png").stat().st_size > 0
    assert not list((out / "cells").glob("*.partial.pt"))

    assert al.run(_args(trio, out)) == 0  # resumable: every curve already complete
    again = json.loads((out / "results.json").read_text())
    assert again["rows"] == rows and len(again["runs"]) == 1


def test_disagreement_needs_a_teacher(trio: Path, tmp_path: Path) -> None:
    args = _args(trio, tmp_path / "out")
    args.strategies, args.method = "disagreement", "supervised"
    assert al.run(args) == 2
