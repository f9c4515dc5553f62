"""`bench al`: active-learning curves (test AUC vs labels) on DIR/{train,val,test}.npz, resumable by curve.

The oracle is the label array of train.npz. Round 0 labels `--start` train images, stratified at random with the
seed; that set and its trained model are shared by every strategy at that seed (cells/round0_s<seed>.pt), so all
curves start at the same point. Each of the `--rounds` later rounds ranks the still-unlabeled images with the
previous round's best model (teacher probabilities -> uncertainty scores, teacher vs student -> disagreement,
teacher pre-logit features -> embeddings, labeled embeddings for kcenter, a kNN graph among the candidates for
relation), labels the strategy's top `--step`, and retrains warm-started from the previous best student weights.
So `--rounds 8` gives 9 points: start, start + step, ..., start + 8 * step. Selection on val.npz only; test metrics
of the teacher where one exists. A cell (strategy, seed) is a whole curve: results.json is rewritten atomically
after each finished curve, and an interrupted curve resumes from its last finished round (cells/*.partial.pt).
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.bench import class_names, command, load_results, machine, write_json
from engine.bench.curves import write_report

log = logging.getLogger(__name__)

# Pool passes per round. Measured on the shared 2-core box (load 3-6, src_mt, compact_cnn, 64 px, chest): one
# 9-point curve took 14.7 min wall with two-model pool inference each round (the disagreement/relation cost):
# 534 s training (46-77 s a round), 320 s pool inference, ~30 s test/loading. Random skips inference (~9 min).
DEFAULT_EPOCHS = 2
KNN_K = 10  # as the analyze job
ROW_METRICS = ("sensitivity", "specificity", "f1", "ece")
NO_MODEL = {"random"}  # strategies that read no model output (no pool inference)
BOTH_ROLES = {"disagreement", "relation"}  # read student and teacher; the rest read the evaluated model only


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="folder with train.npz, val.npz, test.npz")
    parser.add_argument("--strategies", default="random,entropy,disagreement,kcenter,relation")
    parser.add_argument("--start", type=int, default=50, help="labels in round 0 (stratified random)")
    parser.add_argument("--step", type=int, default=50, help="labels the strategy adds per round")
    parser.add_argument("--rounds", type=int, default=8, help="acquisition rounds after round 0")
    parser.add_argument("--method", default="src_mt")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--backbone", default="compact_cnn")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"pool passes per round (default {DEFAULT_EPOCHS} without a budget)")
    parser.add_argument("--budget-minutes", type=float, default=None, help="training wall clock per round")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--knn", type=int, default=KNN_K, help="neighbours in the relation graph")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", required=True, type=Path)


@dataclass
class PoolView:
    """Previous-round model outputs over all `size` train images (row i = train index i); None = not computed."""

    size: int
    probs: np.ndarray | None = None  # the evaluated model's (teacher where one exists)
    student_probs: np.ndarray | None = None  # only beside a teacher: for disagreement
    features: np.ndarray | None = None  # pre-logit features of the evaluated model


def initial_labels(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Exactly n sorted train indices, class-stratified (>= 1 per class), seeded: the shared round 0."""
    from engine.loaders.datasets import stratified_subset

    labels = np.asarray(labels)
    chosen = list(stratified_subset(labels, n / len(labels), seed))
    rng = np.random.default_rng([seed, n])
    while len(chosen) > n:  # rounding overshoot: drop one from the most represented class
        classes, counts = np.unique(labels[chosen], return_counts=True)
        members = [i for i in chosen if labels[i] == classes[np.argmax(counts)]]
        chosen.remove(members[int(rng.integers(len(members)))])
    if len(chosen) < n:
        rest = np.setdiff1d(np.arange(len(labels)), chosen)
        chosen += list(rng.choice(rest, size=n - len(chosen), replace=False))
    return np.sort(np.asarray(chosen, dtype=np.int64))


def select_batch(strategy: str, labeled: np.ndarray, pool: PoolView, n: int, seed: int, knn_k: int = KNN_K,
                 task: str = "multiclass") -> np.ndarray:
    """The strategy's top n among the unlabeled train indices; checked: n distinct, none already labeled."""
    from engine.analysis.relations import knn_graph
    from engine.analysis.strategies import Candidates, get_strategy
    from engine.analysis.uncertainty import scores

    is_labeled = np.zeros(pool.size, dtype=bool)
    is_labeled[labeled] = True
    ids = np.flatnonzero(~is_labeled)
    if n > len(ids):
        raise ValueError(f"asked for {n} labels but only {len(ids)} train images are unlabeled")
    other = None if pool.student_probs is None else pool.student_probs[ids]
    found = {} if pool.probs is None else scores(pool.probs[ids], task, other)
    feats, graph = pool.features, (None, None)
    if feats is not None:
        graph = knn_graph(feats[ids], min(knn_k, max(len(ids) - 1, 1)), seed=seed)
    candidates = Candidates(ids=ids, scores=found, embeddings=None if feats is None else feats[ids],
                            labeled_embeddings=None if feats is None else feats[is_labeled], neighbors=graph[0],
                            neighbor_sims=graph[1], seed=seed, budget=n)
    picked = np.asarray(get_strategy(strategy).rank(candidates), dtype=np.int64)
    if len(picked) != n or len(np.unique(picked)) != n or is_labeled[picked].any():
        raise RuntimeError(f"strategy {strategy!r} returned {len(picked)} ids, not {n} new distinct ones")
    return picked


class _Bench:
    """Data, tensors and config shared by every round of every curve in one `run`."""

    def __init__(self, args: argparse.Namespace) -> None:
        from engine.core.config import DataConfig, TrainConfig
        from engine.core.device import pick_device
        from engine.loaders.datasets import to_uint8_tensor
        from engine.loaders.transforms import ViewMaker

        self.args = args
        self.splits = {s: dict(np.load(args.data / f"{s}.npz")) for s in ("train", "val", "test")}
        self.labels = self.splits["train"]["labels"].astype(np.int64)
        self.class_names = class_names(args.data, self.labels)
        epochs = args.epochs or (None if args.budget_minutes else DEFAULT_EPOCHS)
        self.cfg = TrainConfig(method=args.method, backbone=args.backbone, epochs=epochs, patience=None,
                               budget_minutes=args.budget_minutes, device=args.device, num_threads=args.threads,
                               data=DataConfig(image_size=args.image_size))
        self.device = pick_device(args.device)
        self.views = ViewMaker(self.cfg.data.aug, self.cfg.data.mean, self.cfg.data.std)
        size = self.cfg.data.image_size
        self.train_t = to_uint8_tensor(self.splits["train"]["images"], size)
        self.test_t = to_uint8_tensor(self.splits["test"]["images"], size)
        self.in_chans = 3 if self.splits["train"]["images"].ndim == 4 else 1

    def key(self, seed: int) -> str:
        """What a cached round must match to be reused."""
        return json.dumps({"config": self.cfg.to_dict(), "seed": seed, "start": self.args.start,
                           "step": self.args.step, "data": str(self.args.data.resolve())}, sort_keys=True)

    def predict(self, state: dict[str, dict], images: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        from engine.models import create_model
        from engine.scoring.predict import predict_tensor

        out = {}
        for role, weights in state.items():
            model = create_model(self.cfg.backbone, len(self.class_names), self.in_chans)
            model.load_state_dict(weights)
            out[role] = predict_tensor(model.to(self.device), images, self.views, "multiclass")
        return out

    def train(self, labeled: np.ndarray, seed: int, init_state: dict | None) -> tuple[dict[str, Any], dict]:
        """One round: train on `labeled` (rest of train unlabeled), select on val, evaluate on test."""
        from engine.core.config import replace
        from engine.loaders.datasets import ArrayData
        from engine.scoring.metrics import classification_metrics
        from engine.training.loop import run_training

        partial = np.full_like(self.labels, -1)
        partial[labeled] = self.labels[labeled]
        val = self.splits["val"]
        data = ArrayData(self.splits["train"]["images"], partial, self.class_names, val_images=val["images"],
                         val_labels=val["labels"].astype(np.int64))
        result = run_training(replace(self.cfg, seed=seed), data, init_state=init_state)
        role = result.selected_role
        probs, _ = self.predict({role: result.best_state[role]}, self.test_t)[role]
        test = classification_metrics(probs, self.splits["test"]["labels"].astype(np.int64), "multiclass",
                                      self.class_names)
        row = {"method": self.cfg.method, "labels": len(labeled), "val_auc": result.best_metrics[role]["auc"],
               "test_auc": test["auc"], "budget_minutes": self.cfg.budget_minutes,
               "epochs_run": round(result.epochs_run, 3), "train_seconds": round(result.train_seconds, 1),
               **{f"test_{k}": test[k] for k in ROW_METRICS}}
        return row, result.best_state


def run(args: argparse.Namespace) -> int:
    import torch

    from engine.analysis.strategies import STRATEGIES
    from engine.methods import METHODS
    from engine.training.loop import default_threads

    strategies = [s for s in args.strategies.split(",") if s]
    unknown = [s for s in strategies if s not in STRATEGIES] + ([args.method] if args.method not in METHODS else [])
    if unknown:
        print(f"unknown strategies/method: {unknown}; strategies: {sorted(STRATEGIES)}")
        return 2
    if "disagreement" in strategies and not METHODS[args.method].uses_teacher:
        print(f"strategy 'disagreement' needs a teacher; method {args.method!r} has none")
        return 2
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads or default_threads())  # inference/selection; run_training sets its own
    try:
        bench = _Bench(args)
        plan = [args.start + r * args.step for r in range(args.rounds + 1)]
        if plan[-1] > len(bench.labels):
            print(f"{plan[-1]} labels asked for, train.npz has {len(bench.labels)} images")
            return 2
        results_path = args.out / "results.json"
        results = load_results(results_path)
        run_index, started = None, time.strftime("%Y-%m-%dT%H:%M:%S%z")
        for seed in [int(s) for s in args.seeds.split(",") if s]:
            for strategy in strategies:
                have = {r["labels"] for r in results["rows"] if (r.get("strategy"), r["seed"]) == (strategy, seed)}
                if set(plan) <= have:
                    print(f"skip {strategy} seed={seed}: curve already in {results_path}")
                    continue
                rows = _curve(bench, strategy, seed, len(plan))
                if run_index is None:
                    results["runs"].append({"command": command("python -m engine bench al", add_arguments, args), "machine": machine(),
                                            "started": started})
                    run_index = len(results["runs"]) - 1
                results["rows"] = [r for r in results["rows"] if (r.get("strategy"), r["seed"]) != (strategy, seed)]
                results["rows"] += [{"run": run_index, **_row_order(r)} for r in rows]
                write_json(results_path, results)
    finally:
        torch.set_num_threads(previous_threads)
    if results["rows"]:
        write_report(results["rows"], args.out)
        print(f"wrote {results_path}, {args.out / 'results.md'}, {args.out / 'learning_curve.png'}")
    return 0


def _curve(bench: _Bench, strategy: str, seed: int, points: int) -> list[dict[str, Any]]:
    """One whole curve; round 0 from the shared cache, later rounds resumed from the partial file."""
    from engine.core.checkpoints import load_checkpoint, save_checkpoint

    tic, key, cells = time.perf_counter(), bench.key(seed), bench.args.out / "cells"
    partial_path, round0_path = cells / f"{strategy}_s{seed}.partial.pt", cells / f"round0_s{seed}.pt"
    state = _cached(partial_path, key, load_checkpoint) or _cached(round0_path, key, load_checkpoint)
    if state is None:
        labeled = initial_labels(bench.labels, bench.args.start, seed)
        row, best = bench.train(labeled, seed, None)
        state = {"key": key, "rows": [{**row, "seed": seed, "round": 0, "select_seconds": 0.0}],
                 "picks": [labeled.tolist()], "best": best}
        save_checkpoint(round0_path, state)
    state["rows"] = [{**r, "strategy": strategy} for r in state["rows"]]
    while len(state["rows"]) < points:
        state = _next_round(bench, state, strategy, seed)
        save_checkpoint(partial_path, state)
    rows, seconds = state["rows"], time.perf_counter() - tic
    write_json(cells / f"{strategy}_s{seed}.json", {"rows": rows, "picks": state["picks"], "config":
                                                    bench.cfg.to_dict(), "wall_seconds_this_call": round(seconds, 1)})
    partial_path.unlink(missing_ok=True)
    print(f"{strategy:>12} seed={seed} AUC " + " ".join(f"{r['test_auc']:.3f}" for r in rows) +
          f" | train+select {sum(r['train_seconds'] + r['select_seconds'] for r in rows):.0f} s, "
          f"wall this call {seconds:.0f} s", flush=True)
    return rows


def _cached(path: Path, key: str, load: Any) -> dict[str, Any] | None:
    state = load(path) if path.exists() else None
    return state if state is not None and state.get("key") == key else None


def _next_round(bench: _Bench, state: dict[str, Any], strategy: str, seed: int) -> dict[str, Any]:
    """Rank with the previous best model, add --step labels, retrain warm-started from its student."""
    tic, r = time.perf_counter(), len(state["rows"])
    labeled = np.sort(np.concatenate([np.asarray(p, dtype=np.int64) for p in state["picks"]]))
    pool = _pool_view(bench, state["best"], strategy)
    new = select_batch(strategy, labeled, pool, bench.args.step, seed * 1009 + r, bench.args.knn)
    select_seconds = time.perf_counter() - tic
    row, best = bench.train(np.sort(np.concatenate([labeled, new])), seed, state["best"]["student"])
    row = {**row, "strategy": strategy, "seed": seed, "round": r, "select_seconds": round(select_seconds, 2)}
    log.info("%s seed=%d round %d: %d labels, test AUC %.4f, train %.0f s, select %.1f s", strategy, seed, r,
             row["labels"], row["test_auc"], row["train_seconds"], select_seconds)
    return {"key": state["key"], "rows": state["rows"] + [row], "picks": state["picks"] + [new.tolist()],
            "best": best}


def _pool_view(bench: _Bench, best: dict[str, dict], strategy: str) -> PoolView:
    """Only the model outputs the strategy reads: inference over the pool costs as much as a round's training."""
    size, main = len(bench.labels), "teacher" if "teacher" in best else "student"
    if strategy in NO_MODEL:
        return PoolView(size)
    preds = bench.predict({r: w for r, w in best.items() if r == main or strategy in BOTH_ROLES}, bench.train_t)
    other = preds["student"][0] if main == "teacher" and "student" in preds else None
    return PoolView(size, preds[main][0], other, preds[main][1])


def _row_order(row: dict[str, Any]) -> dict[str, Any]:
    """CONTRACTS §5 AL row: the contract keys first, extra test metrics after."""
    first = ("method", "strategy", "seed", "round", "labels", "val_auc", "test_auc", "budget_minutes",
             "epochs_run", "train_seconds")
    return {**{k: row[k] for k in first}, **{k: v for k, v in row.items() if k not in first}}


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m engine.bench.al ...`) until the CLI mounts it as `bench al`."""
    parser = argparse.ArgumentParser(prog="bench al", description=__doc__)
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
