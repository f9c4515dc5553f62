"""bench ssl's options beyond the protocol: a second label array, a named variant, a stand-alone stage 1."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.bench import ssl as bench_ssl


def test_variant_parses_to_a_tag_and_settings_and_rejects_what_it_cannot_use() -> None:
    assert bench_ssl.parse_variant(None) == (None, {})
    tag, settings = bench_ssl.parse_variant('r1={"data": {"unlabeled_ratio": 1.0}}')
    assert tag == "r1" and settings == {"data": {"unlabeled_ratio": 1.0}}
    for bad in ('r1', '={"data": {}}', 'a+b={"data": {"x": 1}}', 'r1={"optim": {}}', 'r1=[1]', 'r1={not json',
                'r1={"data": {"unlabelled_ratio": 1}}'):
        with pytest.raises(SystemExit):
            bench_ssl.parse_variant(bad)
    assert bench_ssl.row_name("s2mts2", "r1") == "s2mts2+r1"
    assert bench_ssl.row_name("supervised", "r1") == "supervised" and bench_ssl.row_name("plain", "r1") == "plain"
    assert bench_ssl.row_name("s2mts2", None) == "s2mts2"


def _tiny_set(folder: Path, n: int = 48) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir()
    for split in ("train", "val", "test"):
        subtype = np.arange(n) % 3
        images = (rng.integers(0, 60, (n, 16, 16)) + subtype[:, None, None] * 60).astype(np.uint8)
        np.savez(folder / f"{split}.npz", images=images, labels=(subtype > 0).astype(np.uint8),
                 labels_subtype=subtype.astype(np.uint8), groups=np.array([f"p{i}" for i in range(n)]))


def test_second_label_array_variant_rows_and_stand_alone_stage1(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    _tiny_set(data)
    common = ["--data", str(data), "--labels", "labels_subtype", "--label-fractions", "0.25", "--seeds", "0",
              "--epochs", "1", "--threads", "1", "--reuse-stage1", "--no-matched-baseline", "--out", str(out)]
    assert bench_ssl.main([*common, "--methods", "supervised,s2mts2", "--stage1-steps", "3"]) == 0
    stage1 = out / "stage1" / "seed0.pt"
    assert stage1.exists()  # trained on its own before the cells ...
    cell = json.loads((out / "cells" / "s2mts2_0.25_0.json").read_text())
    assert cell["row"]["stage1_reused"] is True  # ... so the first S²MTS² cell already reuses it
    assert cell["config"]["method_params"]["stage1_load"] == str(stage1)
    assert bench_ssl.main([*common, "--methods", "supervised,s2mts2",
                           "--variant", 'r1={"data": {"unlabeled_ratio": 1.0}}']) == 0
    variant = json.loads((out / "cells" / "s2mts2+r1_0.25_0.json").read_text())
    assert variant["config"]["data"]["unlabeled_ratio"] == 1.0
    assert variant["config"]["method_params"]["stage1_load"] == str(stage1)  # the variant keeps the stage-1 reuse
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert sorted(r["method"] for r in rows) == ["s2mts2", "s2mts2+r1", "supervised"]  # supervised not re-run
    supervised = json.loads((out / "cells" / "supervised_0.25_0.json").read_text())
    assert supervised["config"]["data"]["unlabeled_ratio"] == 2.0  # baselines never take the variant
    md = (out / "results.md").read_text()
    assert "| s2mts2+r1 | supervised |" in md and "What the product delivers" in md
    (out / "results.md").unlink()
    assert bench_ssl.main(["--data", str(data), "--report-only", "--out", str(out)]) == 0
    assert (out / "results.md").read_text() == md  # rewritten from results.json alone, nothing trained
    empty = tmp_path / "no_run"
    assert bench_ssl.main(["--data", str(data), "--report-only", "--out", str(empty)]) == 2
    assert not empty.exists()  # nothing written where there was nothing to report


def test_unknown_label_array_is_refused_with_its_name(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _tiny_set(data)
    with pytest.raises(SystemExit, match="labels_missing"):
        bench_ssl.main(["--data", str(data), "--labels", "labels_missing", "--methods", "supervised",
                        "--out", str(tmp_path / "out")])


def test_from_shadow_warm_starts_ssl_twins_and_continued_but_not_plain_or_s2mts2(tmp_path: Path,
                                                                                  monkeypatch) -> None:
    """The product's train-job protocol in the bench: the supervised cell is the shadow (from scratch, its
    selected weights kept); MT, its twin and supervised_continued start from exactly those weights with no
    in-run warm-up; plain (a user's own loop) and S²MTS² (stage 1 is its warm start) do not."""
    import torch

    from engine.core.checkpoints import load_checkpoint
    from engine.training import loop

    seen: list[tuple[str, bool, object, dict]] = []
    real = loop.run_training

    def spy(cfg, data, *args, init_state=None, **kwargs):
        seen.append((cfg.method, cfg.max_steps is not None, init_state, dict(cfg.method_params or {})))
        return real(cfg, data, *args, init_state=init_state, **kwargs)

    monkeypatch.setattr(loop, "run_training", spy)
    data, out = tmp_path / "data", tmp_path / "out"
    _tiny_set(data)
    argv = ["--data", str(data), "--methods", "plain,mean_teacher,s2mts2,supervised", "--label-fractions", "0.25",
            "--seeds", "0", "--budget-minutes", "0.02", "--threads", "1", "--from-shadow", "--out", str(out)]
    assert bench_ssl.main(argv) == 0
    rows = {r["method"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert set(rows) == {"supervised", "supervised_continued", "plain", "mean_teacher", "s2mts2",
                         "supervised@mean_teacher", "supervised@s2mts2"}
    assert {m: rows[m]["init"] for m in rows} == {
        "supervised": "scratch", "supervised_continued": "shadow", "plain": "scratch", "mean_teacher": "shadow",
        "s2mts2": "scratch", "supervised@mean_teacher": "shadow", "supervised@s2mts2": "shadow"}
    saved = load_checkpoint(out / "shadows" / "0.25_0.pt")
    shadow = saved["state"]
    assert saved["role"] in ("student", "teacher")
    assert seen[0][0] == "supervised" and seen[0][2] is None  # the shadow first, whatever --methods' order
    by_init = {(m, twin): init for m, twin, init, _ in seen}
    for key in (("supervised", True), ("mean_teacher", False)):
        assert all(torch.equal(by_init[key][k], shadow[k]) for k in shadow)
    assert by_init[("plain", False)] is None and by_init[("s2mts2", False)] is None
    mt_params = next(p for m, _, _, p in seen if m == "mean_teacher")
    assert mt_params["warmup_fraction"] == 0.0  # the shadow replaces the in-run warm-up
    s2_params = next(p for m, _, _, p in seen if m == "s2mts2")
    assert "warmup_fraction" not in s2_params
    report = (out / "results.md").read_text()
    assert "Product protocol (--from-shadow)" in report
    assert "| mean_teacher | supervised_continued | 1 |" in report and "| supervised_continued | supervised | 1 |" in report
    assert "What the product delivers" in report and "| mean_teacher | 1 |" in report
    assert "| supervised_continued | 1 |" not in report.split("What the product delivers")[1]  # a reference, not a pick
    (out / "results.md").unlink()
    assert bench_ssl.main(["--data", str(data), "--report-only", "--out", str(out)]) == 0
    assert (out / "results.md").read_text() == report


def test_from_shadow_needs_the_shadow_and_its_weights(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    _tiny_set(data)
    common = ["--data", str(data), "--label-fractions", "0.25", "--seeds", "0", "--epochs", "1", "--threads", "1",
              "--no-matched-baseline", "--out", str(out)]
    assert bench_ssl.main([*common, "--methods", "mean_teacher", "--from-shadow"]) == 2  # no supervised: no shadow
    assert not out.exists()  # refused before anything was written (no run record without rows)
    assert bench_ssl.main([*common, "--methods", "supervised"]) == 0  # without --from-shadow no weights are kept
    with pytest.raises(SystemExit, match="shadows/0.25_0.pt is missing"):
        bench_ssl.main([*common, "--methods", "supervised,mean_teacher", "--from-shadow"])
