"""Folding BatchNorm for inference keeps the function and leaves no BatchNorm behind where it can fold."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from engine.inference.fold_bn import fold_batchnorm
from engine.models import create_model
from engine.models.unet import create_seg_model


def _trained_stats(model: nn.Module) -> nn.Module:
    """Non-trivial running statistics and affine parameters, so a fold that ignored them would show."""
    torch.manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.3, 0.3)
    return model.eval()


def test_compact_cnn_folds_every_norm_and_computes_the_same_logits_and_features() -> None:
    model = _trained_stats(create_model("compact_cnn", 3, 1))
    folded = copy.deepcopy(model)
    assert fold_batchnorm(folded) == 4
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(8, 1, 64, 64)
    with torch.inference_mode():
        a, b = model(x), folded(x)
    torch.testing.assert_close(b["logits"], a["logits"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(b["feat"], a["feat"], atol=1e-4, rtol=1e-4)


def test_unet_folds_and_keeps_its_masks() -> None:
    model = _trained_stats(create_seg_model("unet_small", 2, 3))
    folded = copy.deepcopy(model)
    assert fold_batchnorm(folded) > 0
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(folded(x)["logits"], model(x)["logits"], atol=1e-4, rtol=1e-4)


def test_a_model_in_training_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(create_model("compact_cnn", 2, 1).train())


def test_fold_for_inference_folds_each_model_unless_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.inference.fold_bn import fold_for_inference

    def has_norm(model: nn.Module) -> bool:
        return any(isinstance(m, nn.BatchNorm2d) for m in model.modules())

    models = {"student": create_model("compact_cnn", 2, 1).eval(), "teacher": create_model("compact_cnn", 2, 1).eval()}
    monkeypatch.setenv("MEDSSL_FOLD_BN", "0")
    fold_for_inference(models)
    assert all(has_norm(m) for m in models.values())
    monkeypatch.delenv("MEDSSL_FOLD_BN")
    fold_for_inference(models)
    assert not any(has_norm(m) for m in models.values())
