"""Which methods and backbones fit which task, without importing torch (the CLI checks before writing; the app
(Models page) names method families from it, and may import only engine.data, CONTRACTS §1).

The method registry (engine.methods) is the source of truth for what each method trains; a test keeps this
table equal to it, so the CLI can refuse `train --method secl` on a classification project before a job is
queued instead of the worker failing it later.
"""
from __future__ import annotations

SEGMENTATION = "segmentation"
CLASSIFICATION_METHODS = ("supervised", "mean_teacher", "src_mt", "s2mts2", "fixmatch", "plain")  # plain: reference
LABELED_ONLY_METHODS = ("supervised", "plain", "seg_supervised")  # no unlabeled term: no supervised shadow
SEGMENTATION_METHODS = ("seg_supervised", "seg_mean_teacher", "secl", "seg_unimatch")
CLASSIFIER_BACKBONES = ("compact_cnn", "compact_cnn_2conv", "resnet18_small", "densenet121")
SEGMENTATION_BACKBONES = ("unet", "unet_small")
# The default method and backbone per task (Train page first choice, worker and CLI default). The method comes
# from the 10-minute protocol in docs/BENCHMARKS.md (chest 64 px, docs/results/ssl_chest64_10min, 3 seeds per
# fraction): S²MTS² is the best at 5 % labels (+1.1 test AUC over the wall-clock-matched supervised baseline)
# and the only method at or above it on every seed at 20 % (+0.4); Mean Teacher (the default before) is +0.8 at
# 5 % but −0.2 at 20 %, SRC-MT −1.3 and FixMatch −1.8 at 20 %. Val AUC (≈ 0.99 for every method) cannot rank them
# on that set. Its label-free stage 1 is trained once per project and reused (engine.jobs.stage1_cache).
# Segmentation: SECL until the PH2 protocol has run.
TASK_DEFAULTS = {"classification": {"method": "s2mts2", "backbone": "compact_cnn"},
                 SEGMENTATION: {"method": "secl", "backbone": "unet_small"}}


def defaults_for(task: str) -> dict[str, str]:
    """{"method", "backbone"} a job of this task trains with when it names none (every non-segmentation task
    shares the classification defaults)."""
    return dict(TASK_DEFAULTS[SEGMENTATION if task == SEGMENTATION else "classification"])


def default_method(task: str) -> str:
    return defaults_for(task)["method"]


def methods_for(task: str) -> tuple[str, ...]:
    return SEGMENTATION_METHODS if task == SEGMENTATION else CLASSIFICATION_METHODS


def backbones_for(task: str) -> tuple[str, ...]:
    return SEGMENTATION_BACKBONES if task == SEGMENTATION else CLASSIFIER_BACKBONES


def fit_problem(task: str, method: str | None, backbone: str | None) -> str | None:
    """Why (method, backbone) cannot train a `task` project, or None when they fit."""
    if method is not None and method not in methods_for(task):
        return f"method {method!r} does not train {task} projects (use one of: {', '.join(methods_for(task))})"
    if backbone is not None and backbone not in backbones_for(task):
        return f"backbone {backbone!r} does not fit {task} projects (use one of: {', '.join(backbones_for(task))})"
    return None
