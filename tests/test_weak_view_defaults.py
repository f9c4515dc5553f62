"""The weak view is flips only for classification and keeps its jitter for masks; training is channels-last on CPU."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.core.config import SEGMENTATION_AUG, AugConfig, TrainConfig
from engine.loaders.transforms import ViewMaker, _affine

torch.set_num_threads(1)


def test_classification_weak_view_is_flips_only_and_masks_keep_the_jitter() -> None:
    """DECISIONS: weak view = flips (val AUC, supervised and S²MTS²); masks were not measured, so they keep it."""
    from engine.jobs.train_job import build_config

    aug = AugConfig()
    assert (aug.weak_rotate_deg, aug.weak_translate, tuple(aug.weak_scale), aug.hflip) == (0.0, 0.0, (1.0, 1.0), True)
    assert (SEGMENTATION_AUG.weak_rotate_deg, SEGMENTATION_AUG.weak_translate) == (10.0, 0.04)
    assert tuple(SEGMENTATION_AUG.weak_scale) == (0.95, 1.05)
    assert build_config({}, "multiclass").data.aug == aug
    assert build_config({}, "multilabel").data.aug == aug
    assert build_config({}, "segmentation").data.aug == SEGMENTATION_AUG
    # a job's own aug keys win, the rest of the mask default stays
    seg = build_config({"config": {"data": {"labeled_batch": 2, "aug": {"hflip": False}}}}, "segmentation").data
    assert seg.labeled_batch == 2 and seg.aug.hflip is False and seg.aug.weak_rotate_deg == 10.0
    assert build_config({"config": {"data": {"aug": {"weak_rotate_deg": 3.0}}}}, "segmentation").data.aug \
        .weak_rotate_deg == 3.0


def test_the_paper_config_keeps_src_mts_random_affine() -> None:
    from engine.configs.papers import PAPER_CONFIGS

    configs = [c for c in (make() for make in PAPER_CONFIGS.values()) if c.train.method == "src_mt"]
    assert configs and all(c.train.data.aug.weak_rotate_deg == 10.0 for c in configs)


def test_bench_segmentation_cells_use_the_mask_default() -> None:
    from engine.bench.defaults import SEGMENTATION, _config

    args = argparse.Namespace(task="segmentation", method=None, epochs=1, threads=1, data=Path("."))
    assert _config(args, 0, {}).data.aug == SEGMENTATION_AUG
    flips = {name: o for name, _, o in SEGMENTATION}["weak_view_flip_only"]
    assert _config(args, 0, flips).data.aug == AugConfig()
    args.task = "classification"
    assert _config(args, 0, {}).data.aug == AugConfig()


def _mirror_by_grid_sample(x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The resampling path the mirror-only shortcut replaces, with the same draws in the same order."""
    n = x.shape[0]
    for count in (n, n, 2 * n):  # angle, zoom, shift
        torch.rand(count, generator=gen)
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = flip, 1.0
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False), flip


def test_mirror_only_view_equals_the_resampled_one_and_draws_the_same_numbers() -> None:
    x = torch.rand(8, 3, 12, 10)
    fast_gen, slow_gen = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    fast = _affine(x, fast_gen, 0.0, 0.0, (1.0, 1.0), True)
    slow, flip = _mirror_by_grid_sample(x, slow_gen)
    assert 0 < int((flip < 0).sum()) < 8  # both branches exercised
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=0)
    assert torch.equal(fast_gen.get_state(), slow_gen.get_state())  # later views see the same stream
    for i in range(8):  # exact mirror or exact copy, per sample
        assert torch.equal(fast[i], x[i].flip(-1) if flip[i] < 0 else x[i])
    same = _affine(x, torch.Generator().manual_seed(5), 0.0, 0.0, (1.0, 1.0), False)
    assert torch.equal(same, x)


def test_jittered_weak_view_still_resamples() -> None:
    views = ViewMaker(SEGMENTATION_AUG, 0.0, 1.0)
    x = (torch.rand(4, 1, 16, 16) * 255).to(torch.uint8)
    out = views.weak(x, torch.Generator().manual_seed(0))
    plain = views.plain(x)
    assert not any(torch.equal(out[i], plain[i]) or torch.equal(out[i], plain[i].flip(-1)) for i in range(4))


def _conv_layouts(module: nn.Module) -> list[bool]:
    return [m.weight.is_contiguous(memory_format=torch.channels_last) and not m.weight.is_contiguous()
            for m in module.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1) and m.in_channels > 1]


@pytest.mark.parametrize("channels_last", [True, False])
def test_cpu_training_runs_channels_last_unless_switched_off(channels_last: bool) -> None:
    """oneDNN's CPU convolutions run NHWC kernels: 1.25–1.6× faster steps (DECISIONS: channels-last training)."""
    from engine.training.loop import _Trainer
    from tests.test_train import TINY, tiny_data

    cfg = TrainConfig(method="mean_teacher", device="cpu", epochs=1, patience=None, data=TINY,
                      channels_last=channels_last)
    trainer = _Trainer(cfg, tiny_data(), "mean_teacher", (), None, None)
    layouts = _conv_layouts(trainer.method)
    assert layouts and all(flag == channels_last for flag in layouts)  # student and teacher alike
    trainer._set_plan(trainer._fixed_total())
    trainer._train_step()
    assert all(flag == channels_last for flag in _conv_layouts(trainer.method))  # the step keeps the layout
