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
