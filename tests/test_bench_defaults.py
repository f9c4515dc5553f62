"""bench defaults: one ablation row per departure from METHODS.md, val only, paired per-seed deltas."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.bench import defaults


def test_report_shows_sample_std_and_paired_deltas() -> None:
    rows = [{"variant": "default", "seed": 0, "val_auc": 0.90}, {"variant": "default", "seed": 1, "val_auc": 0.92},
            {"variant": "lambda_1", "seed": 0, "val_auc": 0.91}, {"variant": "lambda_1", "seed": 1, "val_auc": 0.90}]
    text = defaults.report({"runs": [{"command": "c", "machine": "m", "started": "s"}], "rows": rows},
                           defaults.CLASSIFICATION, "auc")
    assert "| default | the method's defaults (--method; mean_teacher unless named) | 2 | 0.9100 ± 0.0141 | +0.0000 |" in text  # ddof = 1
    assert "| -0.0050 | +0.0100 | -0.0200 |" in text


def test_method_option_and_the_centring_variant_reach_the_config(tmp_path: Path) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    defaults.add_arguments(parser)
    args = parser.parse_args(["--data", str(tmp_path), "--out", str(tmp_path), "--method", "src_mt"])
    overrides = {v[0]: v[2] for v in defaults.CLASSIFICATION}["relation_centring"]
    cfg = defaults._config(args, 0, overrides)
    assert (cfg.method, cfg.method_params) == ("src_mt", {"relation_centring": True})
    earlier = parser.parse_args(["--data", str(tmp_path), "--out", str(tmp_path)])   # earlier runs' commands
    assert defaults._config(earlier, 0, {}).method == "mean_teacher"


def test_tiny_run_is_resumable_and_val_only(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = tmp_path / "set"
    data.mkdir()
    np.savez(data / "train.npz", images=rng.integers(0, 255, (80, 16, 16), dtype=np.uint8), labels=np.arange(80) % 2)
    np.savez(data / "val.npz", images=rng.integers(0, 255, (20, 16, 16), dtype=np.uint8), labels=np.arange(20) % 2)
    argv = ["--data", str(data), "--variants", "lambda_1", "--seeds", "0", "--epochs", "1", "--threads", "1",
            "--label-fraction", "0.25", "--out", str(tmp_path / "out")]
    assert defaults.main(argv) == 0
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [(r["variant"], r["seed"]) for r in result["rows"]] == [("default", 0), ("lambda_1", 0)]
    assert not any(key.startswith("test_") for r in result["rows"] for key in r)   # decisions use val only
    assert defaults.main(argv) == 0                                                # resumed: nothing re-run
    assert len(json.loads((tmp_path / "out" / "results.json").read_text())["rows"]) == 2


def test_bench_tables_use_the_sample_std() -> None:
    from engine.bench import mean_std

    mean, std = mean_std([0.90, 0.92, None, float("nan")])
    assert mean == 0.91 and abs(std - 0.0141421356) < 1e-9  # ddof = 1 over the two real values
    assert np.isnan(mean_std([0.9])[1]) and np.isnan(mean_std([])[0])


def test_bench_ssl_has_a_plain_reference_row_without_a_matched_twin(tmp_path: Path) -> None:
    """Issue 16 §0: the simplest competent loop sits in the table beside supervised."""
    from engine.bench import ssl

    rng = np.random.default_rng(0)
    data = tmp_path / "set"
    data.mkdir()
    for split, n in (("train", 80), ("val", 20), ("test", 20)):
        np.savez(data / f"{split}.npz", images=rng.integers(0, 255, (n, 16, 16), dtype=np.uint8),
                 labels=np.arange(n) % 2)
    assert ssl.main(["--data", str(data), "--methods", "plain,supervised,mean_teacher", "--label-fractions", "0.25",
                     "--seeds", "0", "--epochs", "1", "--threads", "1", "--out", str(tmp_path / "out")]) == 0
    rows = json.loads((tmp_path / "out" / "results.json").read_text())["rows"]
    assert sorted(r["method"] for r in rows) == ["mean_teacher", "plain", "supervised", "supervised@mean_teacher"]


def test_time_matched_twin_of_a_sub_tenth_second_run_gets_a_real_budget() -> None:
    """Regression (CI OOM): a 0.04 s cell was stored as train_seconds 0.0, its twin got budget_minutes 0.0,
    which read as "no budget", planned 10**9 epochs and allocated a 15 GiB LR schedule."""
    import argparse

    from engine.bench.ssl import MIN_MATCHED_SECONDS, _matching

    args = argparse.Namespace(budget_minutes=None)
    assert _matching(args, {"train_seconds": 0.0, "_seconds": 0.04}) == {
        "budget_minutes": MIN_MATCHED_SECONDS / 60.0, "epochs": None}
    assert _matching(args, {"train_seconds": 12.3, "_seconds": 12.34}) == {"budget_minutes": 12.34 / 60.0,
                                                                          "epochs": None}
    assert _matching(args, {"train_seconds": 7.0}) == {"budget_minutes": 7.0 / 60.0, "epochs": None}  # old cells
