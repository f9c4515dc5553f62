"""The supervised shadow and its proof (issue 16 §4): paired bootstrap, activation rule, reuse, status."""
from __future__ import annotations

import json

import numpy as np
import pytest

from db.project_settings import STRATEGY_NAMES, parse_assignment
from engine.cli import main
from engine.jobs.shadow import choose_active, shadow_config, ssl_config_from_shadow, wants_shadow
from engine.scoring.paired import binary_auc, paired_auc_delta, paired_mean_delta, summary_auc
from tests.test_train_job import _chest_slice, _import


def _probs(score: np.ndarray) -> np.ndarray:
    return np.stack([1.0 - score, score], axis=1)


def test_rank_auc_equals_sklearn_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300) + 0.3 * y, 1)  # many ties
    assert binary_auc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert np.isnan(binary_auc(np.zeros(5), np.arange(5.0)))
    probs, labels = rng.dirichlet(np.ones(4), 200), rng.integers(0, 4, 200)
    from engine.scoring.metrics import classification_metrics

    assert summary_auc(probs, labels, "multiclass") == pytest.approx(
        classification_metrics(probs, labels, "multiclass")["auc"])


def test_paired_bootstrap_is_seeded_paired_and_brackets_the_delta() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    good, weak = _probs(np.clip(0.5 * y + 0.7 * rng.random(400), 0, 1)), _probs(rng.random(400))
    better = paired_auc_delta(good, weak, y, "multiclass", resamples=300, seed=3)
    assert better.delta > 0 and 0 < better.ci95[0] <= better.delta <= better.ci95[1]
    assert better == paired_auc_delta(good, weak, y, "multiclass", resamples=300, seed=3)
    same = paired_auc_delta(good, good, y, "multiclass", resamples=200)
    assert same.delta == 0 and same.ci95 == (0.0, 0.0)  # paired: identical models never differ
    dice = paired_mean_delta(np.array([0.9, 0.8, np.nan, 0.7]), np.array([0.8, 0.8, 0.5, 0.6]), resamples=500)
    assert dice.n == 3 and dice.delta == pytest.approx(0.2 / 3) and dice.ci95[0] >= 0


def test_activation_rule_and_shadow_config() -> None:
    record = {"delta": -0.02, "value": 0.91, "ssl_value": 0.89}
    assert choose_active("best_on_val", record)[0] == "shadow"
    assert choose_active("best_on_val", {**record, "delta": 0.0, "ssl_value": 0.91})[0] == "ssl"
    assert choose_active("latest", record)[0] == "ssl"
    assert choose_active("best_on_val", {**record, "delta": None})[0] == "ssl"
    from engine.core.config import TrainConfig

    cfg = TrainConfig(method="src_mt", backbone="compact_cnn", budget_minutes=3.0, method_params={"beta": 2.0})
    shadow = shadow_config(cfg, "multiclass")
    assert (shadow.method, shadow.method_params, shadow.budget_minutes, shadow.seed) == ("supervised", {}, 3.0, 0)
    assert shadow_config(cfg, "segmentation").method == "seg_supervised"
    assert ssl_config_from_shadow(cfg).method_params == {"beta": 2.0, "warmup_fraction": 0.0}
    assert ssl_config_from_shadow(TrainConfig(method="s2mts2")).method_params == {}  # its own warm start
    assert wants_shadow("fixmatch", {}) and not wants_shadow("supervised", {}) and not wants_shadow("src_mt",
                                                                                                    {"shadow": False})


def test_settings_are_checked_and_strategies_match_the_engine() -> None:
    from engine.analysis.strategies import STRATEGIES

    assert set(STRATEGY_NAMES) == set(STRATEGIES)
    assert parse_assignment("activate=latest") == ("activate", "latest")
    for bad in ("activate=best", "nope=1", "mc_passes=-1", "activate"):
        with pytest.raises(ValueError):
            parse_assignment(bad)


def _status(capsys) -> dict:
    capsys.readouterr()
    assert main(["status", "--project", "cx", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _models(capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["models", "--project", "cx", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_shadow_is_trained_once_reused_while_labels_hold_and_activation_follows_the_setting(tmp_path,
                                                                                         capsys) -> None:
    _import(*_chest_slice(tmp_path, 96, 32))
    assert main(["train", "--project", "cx", "--method", "mean_teacher", "--epochs", "1", "--wait"]) == 0
    first = _models(capsys)
    assert [m["method"] for m in first] == ["supervised", "mean_teacher"]
    shadow, ssl = first
    record = ssl["metrics"]["shadow"]
    assert record["checkpoint_id"] == shadow["id"] and record["reused"] is False and record["resamples"] > 900
    assert ssl["metrics"]["init"] == f"checkpoint {shadow['id']}"  # SSL started from the shadow's weights
    assert ssl["metrics"]["activation"]["rule"] == "best_on_val"
    winner = "supervised" if record["delta"] < 0 else "mean_teacher"
    assert [m["method"] for m in first if m["active"]] == [winner]
    assert _status(capsys)["checkpoints"]["active"]["shadow"]["checkpoint_id"] == shadow["id"]

    assert main(["settings", "--project", "cx", "--set", "activate=latest"]) == 0
    assert main(["train", "--project", "cx", "--method", "src_mt", "--epochs", "1", "--wait"]) == 0
    second = _models(capsys)
    assert [m["method"] for m in second] == ["supervised", "mean_teacher", "src_mt"]  # no second shadow
    newest = second[-1]
    assert newest["active"] and newest["metrics"]["shadow"]["reused"] is True
    assert newest["metrics"]["shadow"]["checkpoint_id"] == shadow["id"]
    assert newest["metrics"]["activation"]["active"] == "ssl"

    assert main(["train", "--project", "cx", "--method", "mean_teacher", "--epochs", "2", "--wait"]) == 0
    third = _models(capsys)  # other settings (epochs): a new shadow of exactly those settings
    assert [m["method"] for m in third][-2:] == ["supervised", "mean_teacher"] and len(third) == 5

    assert main(["train", "--project", "cx", "--method", "mean_teacher", "--epochs", "1", "--no-shadow",
                 "--wait"]) == 0
    last = _models(capsys)[-1]
    assert len(_models(capsys)) == 6 and "shadow" not in last["metrics"]
    assert _status(capsys)["checkpoints"]["active"]["shadow"] is None


def test_models_page_sentence_says_what_the_comparison_supports() -> None:
    from app.views.models_proof import shadow_sentence

    base = {"metric": "auc", "n_val": 120, "delta": 0.021, "ci95": [0.004, 0.039], "value": 0.9}
    assert shadow_sentence("src_mt", base) == ("SRC-MT vs supervised on your 120 val images: +2.1 AUC "
                                               "(95 % CI +0.4 … +3.9): the unlabeled pool helped.")
    assert "labels alone did better" in shadow_sentence("src_mt", {**base, "delta": -0.03, "ci95": [-0.05, -0.01]})
    assert "no clear difference" in shadow_sentence("fixmatch", {**base, "ci95": [-0.01, 0.05]})
    assert shadow_sentence("src_mt", {**base, "ci95": [-0.08, 0.12]}).startswith("Too few val labels to decide")
    assert shadow_sentence("src_mt", {**base, "n_val": 12}).startswith("Too few val labels to decide")
    assert "Dice" in shadow_sentence("secl", {**base, "metric": "dice"})
    assert "undefined" in shadow_sentence("src_mt", {**base, "delta": None})
    assert shadow_sentence("supervised", None).startswith("No supervised shadow")
