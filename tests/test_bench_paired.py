"""Paired per-seed deltas in the bench tables: same seed and fraction only, both baselines, + = better."""
from __future__ import annotations

from engine.bench.paired import paired_rows, paired_table


def _row(method: str, seed: int, auc: float, fraction: float = 0.05) -> dict:
    return {"method": method, "label_fraction": fraction, "seed": seed, "test_auc": auc}


ROWS = [_row("supervised", 0, 0.90), _row("supervised", 1, 0.92), _row("supervised", 2, 0.91),
        _row("src_mt", 0, 0.93), _row("src_mt", 1, 0.91),                      # seed 2 not run yet
        _row("supervised@src_mt", 0, 0.89), _row("supervised@src_mt", 1, 0.95),
        _row("src_mt", 0, 0.50, fraction=0.2), _row("supervised", 0, 0.99, fraction=0.2)]


def test_deltas_pair_seeds_within_a_fraction_against_both_baselines() -> None:
    pairs = {(p["method"], p["vs"]): p for p in paired_rows(ROWS, 0.05, "test_auc", "supervised")}
    assert set(pairs) == {("src_mt", "supervised"), ("src_mt", "supervised@src_mt")}
    wall = pairs[("src_mt", "supervised")]
    assert wall["deltas"].keys() == {0, 1}
    assert abs(wall["deltas"][0] - 0.03) < 1e-9 and abs(wall["deltas"][1] + 0.01) < 1e-9
    assert abs(wall["mean"] - 0.01) < 1e-9
    matched = pairs[("src_mt", "supervised@src_mt")]
    assert abs(matched["deltas"][0] - 0.04) < 1e-9 and abs(matched["deltas"][1] + 0.04) < 1e-9
    other = paired_rows(ROWS, 0.2, "test_auc", "supervised")
    assert [(p["method"], round(p["mean"], 4)) for p in other] == [("src_mt", -0.49)]


def test_table_marks_a_missing_seed_and_signs_every_delta() -> None:
    lines = paired_table([*ROWS, _row("fixmatch", 2, 0.95)], 0.05, "test_auc", "supervised")
    row = next(line for line in lines if line.startswith("| src_mt | supervised |"))
    assert row == "| src_mt | supervised | 2 | +0.0100 | +0.0300 | -0.0100 | – |"
    assert "| fixmatch | supervised | 1 | +0.0400 | – | – | +0.0400 |" in lines
    assert paired_table([_row("supervised", 0, 0.9)], 0.05, "test_auc", "supervised") == []


def test_every_method_is_also_paired_with_the_plain_loop() -> None:
    rows = [*ROWS, _row("plain", 0, 0.95), _row("plain", 1, 0.90)]
    pairs = {(p["method"], p["vs"]): p for p in paired_rows(rows, 0.05, "test_auc", "supervised")}
    assert ("plain", "supervised") in pairs and ("plain", "plain") not in pairs
    assert abs(pairs[("plain", "supervised")]["deltas"][0] - 0.05) < 1e-9
    against_plain = pairs[("src_mt", "plain")]["deltas"]
    assert abs(against_plain[0] + 0.02) < 1e-9 and abs(against_plain[1] - 0.01) < 1e-9


def _val_row(method: str, seed: int, test: float, val: float) -> dict:
    return {**_row(method, seed, test), "val_auc": val}


def test_delivered_model_is_the_one_best_on_val_and_a_tie_keeps_ssl() -> None:
    # What activate = best_on_val hands over: seed 0 the SSL model wins on val (its test Δ counts), seed 1
    # the shadow wins on val (Δ exactly 0 even though SSL was better on test), seed 2 a val tie keeps SSL.
    from engine.bench.paired import delivered_rows, delivered_table

    rows = [_val_row("supervised", 0, 0.90, 0.95), _val_row("s2mts2", 0, 0.93, 0.96),
            _val_row("supervised", 1, 0.90, 0.97), _val_row("s2mts2", 1, 0.99, 0.96),
            _val_row("supervised", 2, 0.92, 0.95), _val_row("s2mts2", 2, 0.91, 0.95),
            _val_row("supervised@s2mts2", 0, 0.5, 0.99), _val_row("plain", 0, 0.99, 0.99)]
    (found,) = delivered_rows(rows, 0.05, "test_auc", "supervised", "val_auc")
    assert found["method"] == "s2mts2" and found["picks"] == {0: "ssl", 1: "shadow", 2: "ssl"}
    assert [round(found["deltas"][s], 4) for s in (0, 1, 2)] == [0.03, 0.0, -0.01]
    lines = delivered_table(rows, 0.05, "test_auc", "supervised", "val_auc")
    assert "| s2mts2 | 3 | +0.0067 | +0.0300 (ssl) | +0.0000 (shadow) | -0.0100 (ssl) |" in lines
    assert delivered_table(ROWS, 0.05, "test_auc", "supervised", "val_auc") == []  # no val key: nothing to pick on
