"""`bench seg`: semi-supervised segmentation vs the supervised baseline on DIR/{train,val,test}.npz, by cell.

Each cell (method, label_fraction, seed) trains on a seeded labeled subset of train.npz (stratified by the
image-level labels when the file has them) with the rest unlabeled, selects on val.npz Dice only, and reports
the test Dice / Jaccard / HD95 / ASD (pixels) of the teacher where one exists (CONTRACTS §5). Every method runs
the same planned iterations (the baseline skips the unlabeled images), or the same --budget-minutes; with a
budget each SSL cell also gets `seg_supervised@<method>`, the baseline run for exactly that cell's iterations
(as bench ssl's `supervised@<method>`). Resumable: cells already in results.json are skipped. Writes results.md,
test_dice.png and overlays_<f>.png.
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

from engine.bench import command, float_metrics, fraction_report, machine, write_json
from engine.bench.shadow_cells import cell_order, continued, load_shadow, save_shadow, shadow_path
from engine.bench.shared_results import SharedResults, twin_to_run

log = logging.getLogger(__name__)
BASELINE = "seg_supervised"
CONTINUED = continued(BASELINE)  # --from-shadow: the baseline trained on from the shadow, same budget
SUMMARY_KEYS = ("test_dice", "val_dice", "test_jaccard", "test_hd95", "test_asd", "train_seconds", "epochs_run")
OVERLAY_CASES = 6  # test cases kept per cell for the overlay grid


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="folder with train.npz, val.npz, test.npz (masks)")
    parser.add_argument("--methods", default="seg_supervised,seg_mean_teacher,secl")
    parser.add_argument("--label-fractions", default="0.1,0.25")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--budget-minutes", type=float, default=None, help="wall clock per run (matched)")
    parser.add_argument("--epochs", type=int, default=None, help="pool passes (default 30 without a budget)")
    parser.add_argument("--backbone", default="unet_small", help="unet_small (CPU default) or unet")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-matched-baseline", action="store_true",
                        help=f"skip the {BASELINE}@<method> rows (budget runs: the SSL cell's iterations)")
    parser.add_argument("--from-shadow", action="store_true",
                        help="SSL cells start from the baseline cell's weights, as the product's train job does")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite results.md and the chart from results.json (no training, no overlays)")
    parser.add_argument("--out", required=True, type=Path)


def run(args: argparse.Namespace) -> int:
    from engine.methods import METHODS

    if args.report_only:
        if not (args.out / "results.json").exists():
            print(f"--report-only: no {args.out / 'results.json'} to report", file=sys.stderr)
            return 2
        _report(SharedResults(args.out / "results.json").read(), args.out, None)
        return 0
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS or "segmentation" not in METHODS[m].tasks]
    if unknown:
        known = [m for m in METHODS.names() if "segmentation" in METHODS[m].tasks]
        print(f"unknown segmentation methods: {unknown}; known: {known}", file=sys.stderr)
        return 2
    methods = cell_order(methods, BASELINE, args.from_shadow)
    if methods is None:
        return 2
    splits = {s: np.load(args.data / f"{s}.npz") for s in ("train", "val", "test")}
    results_path = args.out / "results.json"
    shared = SharedResults(results_path)
    run_index = shared.add_run({"command": command("python -m engine bench seg", add_arguments, args),
                                "machine": machine(args.threads), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    for fraction in [float(f) for f in args.label_fractions.split(",")]:
        for seed in [int(s) for s in args.seeds.split(",")]:
            for method in methods:
                if (method, fraction, seed) not in shared.done():
                    shared.add_row({"run": run_index, **_run_cell(args, splits, method, fraction, seed)})
                matched = twin_to_run(shared, BASELINE, method, fraction, seed, methods,
                                      off=args.no_matched_baseline or not args.budget_minutes,
                                      references=(CONTINUED,))
                if matched is None:
                    continue
                steps = json.loads((args.out / "cells" / f"{method}_{fraction}_{seed}.json").read_text())["steps_run"]
                shared.add_row({"run": run_index, **_run_cell(args, splits, BASELINE, fraction, seed, (method, steps)),
                                "method": matched})
    results = shared.read()
    _report(results, args.out, splits["test"])
    print(f"wrote {results_path}, {args.out / 'results.md'}, {args.out / 'test_dice.png'}")
    return 0


def _class_names(folder: Path, masks: np.ndarray) -> tuple[str, ...]:
    meta = folder / "dataset.json"
    mask_classes = json.loads(meta.read_text()).get("mask_classes") if meta.exists() else None
    if mask_classes:
        return tuple(mask_classes)
    k = int(masks.max()) + 1
    return ("background", "lesion") if k <= 2 else tuple(f"class_{i}" for i in range(k))


def _labeled_subset(train: Any, fraction: float, seed: int) -> np.ndarray:
    from engine.loaders.datasets import stratified_subset

    strata = train["labels"].astype(np.int64) if "labels" in train.files else np.zeros(len(train["masks"]), np.int64)
    return stratified_subset(strata, fraction, seed)


def _run_cell(args: argparse.Namespace, splits: dict, method: str, fraction: float, seed: int,
              twin_of: tuple[str, int] | None = None) -> dict[str, Any]:
    """One cell; twin_of = (SSL method, its steps): the supervised twin of that cell, run for exactly its
    iterations (the wall-clock row is the plain baseline cell). Under --from-shadow every cell but the
    baseline itself starts from the baseline's weights (CONTINUED trains the baseline method on from them)."""
    from engine.core.config import SEGMENTATION_AUG, DataConfig, TrainConfig
    from engine.jobs.shadow import ssl_config_from_shadow, starts_from_shadow
    from engine.loaders.datasets import ArrayData
    from engine.training.loop import run_training

    name, method = method, BASELINE if method == CONTINUED else method
    is_shadow = args.from_shadow and name == BASELINE and twin_of is None
    from_shadow = args.from_shadow and not is_shadow and starts_from_shadow(method)
    shadow_file = shadow_path(args.out, fraction, seed)
    init = load_shadow(shadow_file, BASELINE) if from_shadow else None

    max_steps = twin_of[1] if twin_of else None
    train, val = splits["train"], splits["val"]
    class_names = _class_names(args.data, train["masks"])
    labeled = np.zeros(len(train["masks"]), dtype=bool)
    labeled[_labeled_subset(train, fraction, seed)] = True
    data = ArrayData(train["images"], train["masks"].astype(np.int64), class_names, task="segmentation",
                     labeled_mask=labeled, val_images=val["images"], val_labels=val["masks"].astype(np.int64))
    epochs = None if max_steps else args.epochs or (None if args.budget_minutes else 30)
    cfg = TrainConfig(method=method, backbone=args.backbone, seed=seed, epochs=epochs, patience=None,
                      max_steps=max_steps, budget_minutes=None if max_steps else args.budget_minutes,
                      device=args.device, num_threads=args.threads,
                      eval_batch_size=32, data=DataConfig(image_size=args.image_size, labeled_batch=4,
                                                          unlabeled_ratio=1.0,  # METHODS §4.2: 4 + 4
                                                          aug=SEGMENTATION_AUG))  # the product's mask default
    if from_shadow and method != BASELINE:
        cfg = ssl_config_from_shadow(cfg)  # no in-run warm-up: the shadow is the warm start
    log.info("cell %s fraction=%s seed=%s labeled=%d", name, fraction, seed, int(labeled.sum()))
    result = run_training(cfg, data, init_state=init)
    test, masks = _evaluate(cfg, result, splits["test"], class_names, data.in_chans)
    role = result.selected_role
    if is_shadow:
        save_shadow(shadow_file, role, result.best_state[role])
    row = {"method": name, "label_fraction": fraction, "seed": seed, "budget_minutes": cfg.budget_minutes,
           "epochs_run": round(result.epochs_run, 3), "train_seconds": round(result.train_seconds, 1),
           "val_dice": result.best_metrics[role]["dice"], **{f"test_{k}": test[role][k]
                                                              for k in ("dice", "jaccard", "hd95", "asd")}}
    if args.from_shadow:
        row["init"] = "shadow" if from_shadow else "scratch"
    cell = f"{method}@{twin_of[0]}_{fraction}_{seed}" if twin_of else f"{name}_{fraction}_{seed}"
    detail = {"row": row, "roles": {r: {"test": float_metrics(m), "val": float_metrics(result.best_metrics[r])}
                                    for r, m in test.items()},
              "history": result.history, "planned_steps": result.planned_steps, "steps_run": result.steps_run,
              "config": cfg.to_dict()}
    write_json(args.out / "cells" / f"{cell}.json", detail)
    np.savez_compressed(args.out / "cells" / f"{cell}_pred.npz", masks=masks[role][:OVERLAY_CASES])
    print(f"{name:>16} f={fraction} seed={seed} test_dice={row['test_dice']:.4f} "
          f"(student {test['student']['dice']:.4f}) val_dice={row['val_dice']:.4f} steps={result.steps_run} "
          f"{row['train_seconds']}s", flush=True)
    return row


def _evaluate(cfg, result, test, class_names, in_chans) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    from engine.loaders.datasets import to_uint8_tensor
    from engine.loaders.transforms import ViewMaker
    from engine.models.unet import create_seg_model
    from engine.scoring.metrics import segmentation_metrics
    from engine.scoring.predict import predict_seg_tensor
    from engine.training.seg_task import mask_tensor

    views = ViewMaker(cfg.data.aug, cfg.data.mean, cfg.data.std)
    images = to_uint8_tensor(test["images"], cfg.data.image_size)
    truth = mask_tensor(test["masks"].astype(np.int64), cfg.data.image_size).numpy()
    metrics, masks = {}, {}
    for role, state in result.best_state.items():
        model = create_seg_model(cfg.backbone, len(class_names), in_chans)
        model.load_state_dict(state)
        probs, _ = predict_seg_tensor(model, images, views)
        masks[role] = probs.argmax(axis=1).astype(np.uint8)
        metrics[role] = segmentation_metrics(masks[role], truth, class_names)
    return metrics, masks


def _report(results: dict[str, Any], out: Path, test: Any | None) -> None:
    intro = ["# bench seg", "", ("Mean ± std over seeds; test metrics of the teacher where one exists, selected on "
                                 "val Dice. HD95/ASD in pixels (NaN cases, e.g. an empty prediction, left out of the "
                                 "mean).")]
    if any(r.get("init") == "shadow" for r in results["rows"]):
        intro.append(f"Product protocol (--from-shadow): `{BASELINE}` is the supervised shadow; every SSL cell, "
                     f"its `{BASELINE}@M` twin and `{CONTINUED}` (supervised, same budget again) start from its "
                     "weights, so those rows have had the shadow's minutes too.")
    fraction_report(results["rows"], out, intro, SUMMARY_KEYS, "test_dice", "test_dice.png",
                    "test Dice (mean ± std over seeds)", runs=results["runs"], baseline=BASELINE,
                    references=(CONTINUED,), select_key="val_dice")
    if test is None:
        return
    methods = list(dict.fromkeys(r["method"] for r in results["rows"]))
    for fraction in sorted({r["label_fraction"] for r in results["rows"]}):
        _overlay_grid(out, fraction, methods, test)


def _overlay(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """RGB uint8 with the foreground tinted and its boundary drawn in `colour`."""
    from scipy import ndimage

    rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image.copy()
    fg = mask > 0
    rgb = rgb.astype(np.float32)
    rgb[fg] = 0.65 * rgb[fg] + 0.35 * np.array(colour, np.float32)
    rgb[fg & ~ndimage.binary_erosion(fg)] = colour
    return rgb.astype(np.uint8)


def _overlay_grid(out: Path, fraction: float, methods: list[str], test: Any) -> None:
    """Rows: test cases; columns: image, truth, then each method's prediction (lowest seed available)."""
    from PIL import Image, ImageDraw

    preds = {}
    for method in methods:
        files = sorted((out / "cells").glob(f"{method}_{fraction}_*_pred.npz"))
        if files:
            preds[method] = np.load(files[0])["masks"]
    if not preds:
        return
    size = next(iter(preds.values())).shape[-1]
    n = min(len(p) for p in preds.values())
    images = test["images"][:n]
    truth = test["masks"][:n]
    if images.shape[1] != size:
        images = np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in images])
        truth = np.stack([np.asarray(Image.fromarray(t).resize((size, size), Image.NEAREST)) for t in truth])
    cols = ["image", "truth", *preds]
    pad, head = 4, 16
    grid = Image.new("RGB", (len(cols) * (size + pad) + pad, n * (size + pad) + pad + head), "white")
    draw = ImageDraw.Draw(grid)
    for c, name in enumerate(cols):
        draw.text((pad + c * (size + pad), 2), name[:20], fill="black")
    for r in range(n):
        tiles = [images[r], _overlay(images[r], truth[r], (0, 200, 0))]
        tiles += [_overlay(images[r], preds[m][r], (230, 40, 40)) for m in preds]
        for c, tile in enumerate(tiles):
            arr = tile if tile.ndim == 3 else np.repeat(tile[..., None], 3, axis=2)
            grid.paste(Image.fromarray(arr), (pad + c * (size + pad), head + pad + r * (size + pad)))
    grid.save(out / f"overlays_{fraction}.png")


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m engine.bench.seg ...`) until the CLI mounts it as `bench seg`."""
    parser = argparse.ArgumentParser(prog="bench seg", description=__doc__)
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
