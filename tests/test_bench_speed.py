"""bench speed: one tiny run writes every key with positive, finite numbers (no timing assertions)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.bench import speed
from engine.cli.bench_commands import SUITES


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """96 random 32x32 images (two classes) plus a validation split: enough for every phase of the plan."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "data"
    folder.mkdir()
    for split, n in (("train", 96), ("val", 24)):
        images = rng.integers(0, 256, (n, 32, 32), dtype=np.uint8)
        np.savez(folder / f"{split}.npz", images=images, labels=(np.arange(n) % 2).astype(np.uint8))
    return folder


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def test_speed_writes_results(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    methods = ["supervised", "mean_teacher", "src_mt", "s2mts2"]
    code = speed.main(["--data", str(tiny), "--methods", ",".join(methods), "--backbones", "compact_cnn",
                       "--steps", "2", "--matmul-sizes", "64,128", "--threads", "1", "--out", str(out)])
    assert code == 0
    result = json.loads((out / "results.json").read_text())
    assert set(result) == {"runs", "matmul", "rows", "phases", "goals"}
    assert result["runs"][0]["command"].startswith("python -m engine bench speed --data")
    assert result["runs"][0]["threads"] == 1
    assert _positive(result["matmul"]["gflops"])
    assert [m["when"] for m in result["matmul"]["samples"]] == ["before compact_cnn", "end"]
    assert set(result["matmul"]["samples"][0]["per_size"]) == {"64", "128"}
    assert [r["method"] for r in result["rows"]] == methods
    for row in result["rows"]:
        for key in ("images_per_s", "gflops", "fraction_of_matmul", "pipeline_ratio_min", "projected_train_minutes",
                    "eval_seconds", "projected_run_minutes"):
            assert _positive(row[key]), (row["method"], key, row[key])
    phases = {(p["method"], p["phase"]) for p in result["phases"]}
    assert {("supervised", "train"), ("src_mt", "warm_start"), ("src_mt", "consistency"),
            ("s2mts2", "pretrain")} <= phases
    for phase in result["phases"]:
        assert phase["steps_timed"] == 2 and phase["views"]
        for key in ("step_seconds", "images_per_s", "gflop_per_step", "gflops", "pipeline_images_per_s",
                    "pipeline_ratio", "fraction_of_matmul"):
            assert _positive(phase[key]), (phase["method"], phase["phase"], key)
    consistency = next(p for p in result["phases"] if p["method"] == "src_mt" and p["phase"] == "consistency")
    warm = next(p for p in result["phases"] if p["method"] == "src_mt" and p["phase"] == "warm_start")
    assert consistency["images_per_step"] == 48 and warm["images_per_step"] == 16  # 16 labeled + 32 unlabeled
    assert consistency["gflop_per_step"] > 3 * warm["gflop_per_step"]  # teacher forward counted too
    assert set(result["goals"]["fraction_of_matmul_default"]) == set(methods)
    assert "| compact_cnn | src_mt |" in (out / "results.md").read_text()


def test_speed_is_a_bench_suite() -> None:
    assert SUITES["speed"] == "engine.bench.speed"


def test_unknown_backbone_is_a_usage_error(tiny: Path, tmp_path: Path) -> None:
    assert speed.main(["--data", str(tiny), "--backbones", "nope", "--out", str(tmp_path / "o")]) == 2


def test_contiguous_what_if_trains_nchw_and_says_so(tiny: Path, tmp_path: Path, monkeypatch) -> None:
    """Training is channels-last on CPU since issue 16; `--contiguous` measures the old layout, and says so."""
    from engine.training import loop

    layouts: list[bool] = []
    original = loop._Trainer.__init__

    def spy(self, cfg, *args, **kwargs) -> None:
        original(self, cfg, *args, **kwargs)
        conv = next(m for m in self.method.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
        layouts.append(conv.weight.is_contiguous())

    monkeypatch.setattr(loop._Trainer, "__init__", spy)
    for flag, out in ((["--contiguous"], tmp_path / "nchw"), ([], tmp_path / "nhwc")):
        assert speed.main(["--data", str(tiny), "--methods", "supervised", "--backbones", "compact_cnn", "--steps",
                           "2", "--matmul-sizes", "64", "--threads", "1", *flag, "--out", str(out)]) == 0
    assert layouts == [True, False]
    assert json.loads((tmp_path / "nchw" / "results.json").read_text())["runs"][0]["contiguous"] is True
    assert "What-if run: models in NCHW" in (tmp_path / "nchw" / "results.md").read_text()
    assert "What-if" not in (tmp_path / "nhwc" / "results.md").read_text()
