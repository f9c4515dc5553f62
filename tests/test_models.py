"""Every registered backbone honours the model contract (parametrized over MODELS)."""
import pytest
import torch

from engine.models import MODELS, create_model, pretrained

torch.set_num_threads(1)  # tiny tensors; the shared 2-core box punishes oversubscription


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("in_chans", [1, 3])
def test_contract(name: str, in_chans: int) -> None:
    model = create_model(name, num_classes=3, in_chans=in_chans).eval()
    x = torch.randn(2, in_chans, 32, 32)
    with torch.no_grad():
        out = model(x)
        fmap = model.forward_features(x)
        pre = model.forward_head(fmap, pre_logits=True)
        logits = model.forward_head(fmap)
    assert out["logits"].shape == (2, 3)
    assert out["feat"].shape == (2, model.num_features) and fmap.ndim == 4
    assert torch.allclose(pre, out["feat"], atol=1e-5) and torch.allclose(logits, out["logits"], atol=1e-5)


@pytest.mark.parametrize("name", ["densenet121", "resnet18_small"])
def test_pretrained_falls_back_offline(name: str, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    def offline(**kwargs):
        raise OSError("no network")

    import torchvision.models as tvm

    enum = tvm.DenseNet121_Weights if name == "densenet121" else tvm.ResNet18_Weights
    monkeypatch.setattr(type(enum.IMAGENET1K_V1), "get_state_dict", lambda self, **kw: offline())
    with caplog.at_level("WARNING"):
        model = create_model(name, num_classes=2, in_chans=1, pretrained=True)
    assert "random init" in caplog.text
    assert model.eval()(torch.randn(1, 1, 32, 32))["logits"].shape == (1, 2)


def test_pretrained_grayscale_sums_rgb_first_conv() -> None:
    rgb = torch.randn(8, 3, 3, 3)
    assert torch.allclose(pretrained.adapt_first_conv(rgb, 1), rgb.sum(1, keepdim=True))
    assert pretrained.adapt_first_conv(rgb, 3) is rgb


def test_pretrained_load_uses_fetched_weights() -> None:
    donor = create_model("resnet18_small", num_classes=2, in_chans=1)
    state = {k: v + 1.0 if v.is_floating_point() else v for k, v in donor.state_dict().items()}
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    target = create_model("resnet18_small", num_classes=2, in_chans=1)
    assert pretrained.load_pretrained(target, lambda: state, "conv1.weight", 1, ("fc.",))
    assert torch.equal(target.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])


def test_duplicate_registration_is_an_error() -> None:
    with pytest.raises(KeyError, match="duplicate"):
        MODELS.register("compact_cnn")(lambda **kw: None)
