"""`bench ssl`: SSL methods vs the supervised baseline on DIR/{train,val,test}.npz, resumable by cell.

Each cell (method, label_fraction, seed) trains on a seeded stratified labeled subset of train.npz with the
rest unlabeled, selects on val.npz only, and reports the test metrics of the teacher where one exists.
CONTRACTS §6: both comparisons are reported. With --budget-minutes every method gets the same wall clock
and each SSL cell also gets `supervised@<method>`: supervised run for exactly that cell's iterations.
Without a budget every method runs the same planned iterations and `supervised@<method>` gets that
cell's wall-clock seconds instead.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.bench import class_names as dataset_class_names
from engine.bench import command, float_metrics, fraction_report, machine, write_json
from engine.bench.shadow_cells import cell_order, continued, load_shadow, save_shadow, shadow_path
from engine.bench.shared_results import SharedResults, twin_to_run
from engine.bench.ssl_variant import parse_variant

log = logging.getLogger(__name__)
SUMMARY_KEYS = ("test_auc", "val_auc", "test_sensitivity", "test_specificity", "test_f1", "test_ece",
                "train_seconds", "epochs_run")
BASELINE = "supervised"
CONTINUED = continued(BASELINE)  # --from-shadow: supervised trained on from the shadow for the same budget
MIN_MATCHED_SECONDS = 0.5  # a time-matched twin gets at least this (a 0-second budget is not a budget)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="folder with train.npz, val.npz, test.npz")
    parser.add_argument("--methods", default="plain,supervised,mean_teacher,src_mt,s2mts2,fixmatch")
    parser.add_argument("--label-fractions", default="0.05,0.2")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--budget-minutes", type=float, default=None, help="wall clock per run (matched)")
    parser.add_argument("--epochs", type=int, default=None, help="pool passes (default 12 without a budget)")
    parser.add_argument("--backbone", default="compact_cnn")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-matched-baseline", action="store_true", help="skip the supervised@<method> rows")
    parser.add_argument("--reuse-stage1", action="store_true",
                        help="S²MTS²: train its label-free stage 1 once per seed and reuse it at every label fraction "
                             "(the product reuses it per project); the row says stage1_reused")
    parser.add_argument("--labels", default="labels",
                        help="which label array of the .npz files to train on (e.g. labels_subtype: a second task "
                             "on the same images); a key other than labels names its classes class_<i>")
    parser.add_argument("--variant", default=None, metavar="TAG=JSON",
                        help='train every SSL method with these settings, rows named <method>+<TAG>: JSON with '
                             '"method_params" and/or "data" keys (the baselines keep the defaults)')
    parser.add_argument("--stage1-steps", type=int, default=None,
                        help="with --reuse-stage1: train a missing stage-1 encoder on its own for this many steps "
                             "before the cells, so every S²MTS² cell of the seed gets its whole budget for fine-tuning")
    parser.add_argument("--from-shadow", action="store_true",
                        help="the product's protocol: the supervised cell is the shadow, and every SSL cell that the "
                             "train job starts from it (all but S²MTS², which has stage 1), its twin and "
                             f"{CONTINUED} start from its weights with no in-run warm-up; plain stays from scratch")
    parser.add_argument("--report-only", action="store_true", help="rewrite results.md from results.json, train nothing")
    parser.add_argument("--out", required=True, type=Path)


def run(args: argparse.Namespace) -> int:
    from engine.methods import METHODS

    methods = [m for m in args.methods.split(",") if m]
    results_path = args.out / "results.json"
    if args.report_only:
        if not results_path.exists():
            print(f"--report-only: no {results_path} to report", file=sys.stderr)
            return 2
        _report(SharedResults(results_path, _public).read(), args.out)
        return 0
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        print(f"unknown methods: {unknown}; known: {METHODS.names()}", file=sys.stderr)
        return 2
    methods = cell_order(methods, BASELINE, args.from_shadow)  # before anything is written to --out
    if methods is None:
        return 2
    tag, variant = parse_variant(args.variant)
    splits = {s: _task_split(np.load(args.data / f"{s}.npz"), args.labels) for s in ("train", "val", "test")}
    class_names = dataset_class_names(args.data, splits["train"]["labels"], args.labels)
    shared = SharedResults(results_path, _public)
    run_index = shared.add_run({"command": command("python -m engine bench ssl", add_arguments, args),
                                "machine": machine(args.threads), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.stage1_steps and args.reuse_stage1 and "s2mts2" in methods:
        for seed in seeds:
            _train_stage1(args, splits, class_names, seed)
    names = {m: row_name(m, tag) for m in methods}
    for fraction in [float(f) for f in args.label_fractions.split(",")]:
        for seed in seeds:
            for method in methods:
                name = names[method]
                if (name, fraction, seed) not in shared.done():
                    row = _run_cell(args, splits, class_names, BASELINE if method == CONTINUED else method,
                                    fraction, seed, variant=variant if name != method else {}, name=name)
                    shared.add_row({"run": run_index, **row})
                matched = twin_to_run(shared, BASELINE, name, fraction, seed, list(names.values()),
                                      args.no_matched_baseline, references=REFERENCES)
                if matched is None:
                    continue
                source = json.loads((args.out / "cells" / f"{name}_{fraction}_{seed}.json").read_text())["row"]
                row = _run_cell(args, splits, class_names, BASELINE, fraction, seed, twin=_matching(args, source))
                shared.add_row({"run": run_index, **row, "method": matched})
    _report(shared.read(), args.out)
    print(f"wrote {results_path}, {args.out / 'results.md'}, {args.out / 'test_auc.png'}")
    return 0


BASELINES = (BASELINE, "plain", CONTINUED)  # never take a --variant: they are what the variant is measured against
REFERENCES = ("plain", CONTINUED)  # rows every SSL method is also compared with (not twins, not methods)
SCRATCH_ONLY = ("plain",)  # the reference loop a user writes: never warm-started


def row_name(method: str, tag: str | None) -> str:
    """`s2mts2+ratio1` for a variant's rows; baselines keep their own name (they are not varied)."""
    return method if tag is None or method in BASELINES else f"{method}+{tag}"


def _task_split(npz: Any, key: str) -> dict[str, np.ndarray]:
    """The split's arrays with `labels` = the chosen label array (a second task on the same images)."""
    if key not in npz.files:
        raise SystemExit(f"--labels {key}: not in the data (it has {sorted(npz.files)})")
    arrays = {k: npz[k] for k in npz.files if k in ("images", "groups")}
    return {**arrays, "labels": npz[key]}


def _train_stage1(args: argparse.Namespace, splits: dict, class_names: tuple[str, ...], seed: int) -> None:
    """S²MTS²'s label-free stage 1 alone (pretrain_fraction 1), saved where the cells look for it. The labeled
    subset does not matter (stage 1 reads the whole pool uniformly); one labeled image keeps the loop valid."""
    path = args.out / "stage1" / f"seed{seed}.pt"
    if path.exists():
        return
    from engine.core.config import DataConfig, TrainConfig
    from engine.training.loop import run_training

    data = _array_data(splits, class_names, np.array([0]))
    cfg = TrainConfig(method="s2mts2", backbone=args.backbone, seed=seed, epochs=None, patience=None,
                      max_steps=args.stage1_steps, device=args.device, num_threads=args.threads,
                      data=DataConfig(image_size=args.image_size),
                      method_params={"pretrain_fraction": 1.0, "stage1_save": str(path)})
    result = run_training(cfg, data)
    log.info("stage 1 seed %s: %d steps in %.1f s -> %s", seed, result.steps_run, result.train_seconds, path)
    print(f"stage 1 seed={seed}: {result.steps_run} steps, {result.train_seconds:.1f}s -> {path}", flush=True)


def _matching(args: argparse.Namespace, source: dict[str, Any]) -> dict[str, Any]:
    """The other comparison for this SSL cell: its iterations (budget mode) or its seconds (epoch mode)."""
    if args.budget_minutes:
        return {"budget_minutes": None, "epochs": None, "max_steps": source["_steps"]}
    seconds = source.get("_seconds", source["train_seconds"])  # unrounded: a tiny run's 0.04 s rounds to 0.0
    return {"budget_minutes": max(seconds, MIN_MATCHED_SECONDS) / 60.0, "epochs": None}


def _array_data(splits: dict, class_names: tuple[str, ...], labeled: np.ndarray) -> Any:
    """train.npz with only `labeled` keeping its label (the rest is the unlabeled pool), val.npz as val."""
    from engine.loaders.datasets import ArrayData

    train, val = splits["train"], splits["val"]
    labels = train["labels"].astype(np.int64)
    partial = np.full_like(labels, -1)
    partial[labeled] = labels[labeled]
    return ArrayData(train["images"], partial, class_names, groups=train.get("groups"),
                     val_images=val["images"], val_labels=val["labels"].astype(np.int64))


def _run_cell(args: argparse.Namespace, splits: dict, class_names: tuple[str, ...], method: str,
              fraction: float, seed: int, twin: dict[str, Any] | None = None, variant: dict[str, Any] | None = None,
              name: str | None = None) -> dict[str, Any]:
    """One cell. `twin`: the TrainConfig bound of a supervised@M row (M's steps or seconds); `variant`: a
    --variant's `data` / `method_params`, merged into the defaults; `name`: the row's method (default: method)."""
    from engine.core.config import DataConfig, TrainConfig
    from engine.jobs.shadow import ssl_config_from_shadow, starts_from_shadow
    from engine.loaders.datasets import stratified_subset

    twin, variant = twin or {}, variant or {}
    is_shadow = args.from_shadow and not twin and (name or method) == BASELINE
    from_shadow = args.from_shadow and not is_shadow and method not in SCRATCH_ONLY and starts_from_shadow(method)
    shadow_file = shadow_path(args.out, fraction, seed)
    init = load_shadow(shadow_file, BASELINE) if from_shadow else None
    labeled = stratified_subset(splits["train"]["labels"].astype(np.int64), fraction, seed)
    data = _array_data(splits, class_names, labeled)
    epochs = args.epochs or (None if args.budget_minutes else 12)
    settings = {"method": method, "backbone": args.backbone, "seed": seed, "epochs": epochs, "patience": None,
                "budget_minutes": args.budget_minutes, "device": args.device, "num_threads": args.threads,
                "data": DataConfig(image_size=args.image_size)}
    settings.update(twin)
    if "data" in variant:
        settings["data"] = DataConfig(image_size=args.image_size, **variant["data"])
    method_params = dict(variant.get("method_params", {}))
    stage1 = args.out / "stage1" / f"seed{seed}.pt"
    stage1_existed = method == "s2mts2" and args.reuse_stage1 and stage1.exists()
    if method == "s2mts2" and args.reuse_stage1:  # the pool is the whole train set at every fraction
        method_params["stage1_load" if stage1_existed else "stage1_save"] = str(stage1)
    if method_params:
        settings["method_params"] = method_params
    cfg = TrainConfig(**settings)
    if from_shadow and method != BASELINE:
        cfg = ssl_config_from_shadow(cfg)  # no in-run warm-up: the shadow is the warm start
    log.info("cell %s fraction=%s seed=%s labeled=%d %s", method, fraction, seed, len(labeled), twin or variant)
    from engine.training.loop import run_training

    result = run_training(cfg, data, init_state=init)
    test = _evaluate(cfg, result, splits["test"], class_names, data.in_chans)
    role = result.selected_role
    if is_shadow:
        save_shadow(shadow_file, role, result.best_state[role])
    row = {"method": name or method, "label_fraction": fraction, "seed": seed, "budget_minutes": cfg.budget_minutes,
           "epochs_run": round(result.epochs_run, 3), "train_seconds": round(result.train_seconds, 1),
           "val_auc": result.best_metrics[role]["auc"], "test_auc": test[role]["auc"],
           "test_sensitivity": test[role]["sensitivity"], "test_specificity": test[role]["specificity"],
           "test_f1": test[role]["f1"], "test_ece": test[role]["ece"], "_steps": result.steps_run,
           "_seconds": result.train_seconds,
           **({"stage1_reused": bool(stage1_existed)} if method == "s2mts2" and args.reuse_stage1 else {}),
           **({"init": _init_name(from_shadow, method, args.reuse_stage1)} if args.from_shadow else {})}
    detail = {"row": row, "roles": {r: {"test": float_metrics(m), "val": float_metrics(result.best_metrics[r])}
                                    for r, m in test.items()},
              "history": result.history, "planned_steps": result.planned_steps, "config": cfg.to_dict()}
    cell_name = f"{row['method']}_{fraction}_{seed}" + ("_matched" if twin else "")
    write_json(args.out / "cells" / f"{cell_name}.json", detail)
    print(f"{row['method']:>14} f={fraction} seed={seed} {twin or variant or ''} test_auc={row['test_auc']:.4f} "
          f"(student {test['student']['auc']:.4f}) steps={result.steps_run} {row['train_seconds']}s", flush=True)
    return row


def _init_name(from_shadow: bool, method: str, reuse_stage1: bool) -> str:
    """What a --from-shadow row started from: the shadow, S²MTS²'s own stage 1, or nothing."""
    if from_shadow:
        return "shadow"
    return "stage 1" if method == "s2mts2" and reuse_stage1 else "scratch"


def _evaluate(cfg, result, test, class_names, in_chans) -> dict[str, dict[str, Any]]:
    from engine.loaders.datasets import to_uint8_tensor
    from engine.loaders.transforms import ViewMaker
    from engine.models import create_model
    from engine.scoring.metrics import classification_metrics
    from engine.scoring.predict import predict_tensor

    views = ViewMaker(cfg.data.aug, cfg.data.mean, cfg.data.std)
    images = to_uint8_tensor(test["images"], cfg.data.image_size)
    out = {}
    for role, state in result.best_state.items():
        model = create_model(cfg.backbone, len(class_names), in_chans)
        model.load_state_dict(state)
        probs, _ = predict_tensor(model, images, views, "multiclass")
        out[role] = classification_metrics(probs, test["labels"].astype(np.int64), "multiclass", class_names)
    return out


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """Exactly the CONTRACTS §5 row keys (internal '_steps' lives in cells/*.json)."""
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _report(results: dict[str, Any], out: Path) -> None:
    intro = ["# bench ssl", "", "Mean ± std over seeds; test metrics of the teacher where one exists, selected on val.",
             ("`supervised@M`: the matched baseline for method M — same iterations as M when the run had a "
              "budget (then plain `supervised` is the wall-clock match), same seconds as M otherwise.")]
    if any(r.get("init") == "shadow" for r in results["rows"]):
        intro.append(f"Product protocol (--from-shadow): `{BASELINE}` is the supervised shadow; every SSL cell but "
                     f"S²MTS² (stage 1 is its warm start), its `{BASELINE}@M` twin and `{CONTINUED}` (supervised, same "
                     "budget again) start from its weights, so those rows have had the shadow's minutes too; "
                     "`plain` trains from scratch.")
    fraction_report(results["rows"], out, intro, SUMMARY_KEYS, "test_auc", "test_auc.png",
                    "test AUC (mean ± std over seeds)", runs=results["runs"], baseline=BASELINE,
                    references=REFERENCES, select_key="val_auc")


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m engine.bench.ssl ...`) until the CLI mounts it as `bench ssl`."""
    parser = argparse.ArgumentParser(prog="bench ssl", description=__doc__)
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
