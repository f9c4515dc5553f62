"""Inference copies are folded and channels-last on the CPU, compute the same outputs, and the switch works."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from engine.inference.fast_eval import prepare_for_inference
from engine.models import create_model
from engine.models.unet import create_seg_model


def _conv_weights_channels_last(model: nn.Module) -> list[bool]:
    return [m.weight.is_contiguous(memory_format=torch.channels_last) and not m.weight.is_contiguous()
            for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1) and m.in_channels > 1]  # 1 channel: both layouts


def test_cpu_copies_become_channels_last_and_give_the_same_outputs() -> None:
    torch.manual_seed(0)
    reference = {"student": create_model("compact_cnn", 3, 1).eval(), "seg": create_seg_model("unet_small", 2, 1).eval()}
    prepared = copy.deepcopy(reference)
    prepare_for_inference(prepared)
    for model in prepared.values():
        flags = _conv_weights_channels_last(model)
        assert flags and all(flags)
    x_cls, x_seg = torch.randn(4, 1, 64, 64), torch.randn(2, 1, 64, 64)   # contiguous inputs, as callers pass
    with torch.inference_mode():
        a, b = reference["student"](x_cls), prepared["student"](x_cls)
        torch.testing.assert_close(b["logits"], a["logits"], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(b["feat"], a["feat"], atol=1e-4, rtol=1e-4)
        seg = prepared["seg"](x_seg)["logits"]
        torch.testing.assert_close(seg, reference["seg"](x_seg)["logits"], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(torch.softmax(seg, 1).numpy(), torch.softmax(seg.contiguous(), 1).numpy())


def test_switched_off_keeps_the_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDSSL_CHANNELS_LAST", "0")
    models = {"student": create_model("compact_cnn", 2, 1).eval()}
    prepare_for_inference(models)
    assert not any(_conv_weights_channels_last(models["student"]))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in models["student"].modules())   # still folded
