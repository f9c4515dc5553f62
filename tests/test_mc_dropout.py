"""MC-dropout variance: the sampling helper on tiny CPU models, and the analyze job storing it per image."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from sqlalchemy import select

from db.config import StoreConfig
from db.models import Checkpoint, UncertaintyScore
from db.store import open_store
from engine.core.config import AugConfig
from engine.inference.infer import _mc_variance
from engine.inference.mc_dropout import has_dropout, mc_dropout_samples, mc_variance
from engine.loaders.transforms import ViewMaker
from engine.models.small_cnn import CompactCNN
from engine.scoring.predict import predict_tensor
from tests.test_train_job import _chest_slice, _import

VIEWS = ViewMaker(AugConfig(), 0.5, 0.25)
SCORE_NAMES = ("entropy", "margin", "least_confidence", "disagreement")


def _model(drop_rate: float) -> CompactCNN:
    torch.manual_seed(0)
    return CompactCNN(3, 1, widths=(8, 16), drop_rate=drop_rate).eval()


def _images(n: int = 10) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(0).integers(0, 256, (n, 1, 16, 16), dtype=np.uint8))


def test_no_active_dropout_gives_zero_variance_and_eval_batchnorm() -> None:
    model = _model(0.0)
    assert not has_dropout(model)
    samples = mc_dropout_samples(model, _images(), VIEWS, "multiclass", passes=4, batch_size=4)
    assert samples.shape == (4, 10, 3)
    np.testing.assert_array_equal(mc_variance(samples), 0.0)
    # BatchNorm stayed in eval (running stats): every pass equals plain eval inference.
    probs, _ = predict_tensor(model, _images(), VIEWS, "multiclass")
    np.testing.assert_allclose(samples[0], probs, atol=1e-6)


def test_dropout_gives_positive_variance_reproducibly_and_restores_modes() -> None:
    model = _model(0.5).train()
    bn = model.features[0][1]
    running_mean = bn.running_mean.clone()
    rng_before = torch.random.get_rng_state()
    first = mc_dropout_samples(model, _images(), VIEWS, "multiclass", passes=5, seed=3, batch_size=4)
    again = mc_dropout_samples(model, _images(), VIEWS, "multiclass", passes=5, seed=3, batch_size=4)
    other = mc_dropout_samples(model, _images(), VIEWS, "multiclass", passes=5, seed=4, batch_size=4)
    assert (mc_variance(first) > 0).all()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert torch.equal(bn.running_mean, running_mean)            # no BatchNorm updates
    assert all(m.training for m in model.modules())               # caller's modes are restored
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # caller's RNG stream is untouched


def test_backbone_without_dropout_is_skipped_with_a_log_line(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="medssl.infer"):
        assert _mc_variance(_model(0.0), _images(), VIEWS, "multiclass", 3, 0, 8, None) is None
    assert "no active dropout" in caplog.text
    variance = _mc_variance(_model(0.5), _images(), VIEWS, "multiclass", 3, 0, 8, None)
    assert variance is not None and variance.shape == (10,) and variance.dtype == np.float32


def test_analyze_with_mc_passes_stores_variance_for_every_image(tmp_path, capsys, _isolated_home) -> None:
    from engine.cli import main
    from tests.test_views import _page_app

    _import(*_chest_slice(tmp_path, 80, 30))
    assert main(["train", "--project", "cx", "--method", "mean_teacher", "--epochs", "1", "--no-shadow", "--wait"]) == 0
    with pytest.raises(SystemExit):
        main(["analyze", "--project", "cx", "--mc-passes", "1"])
    store = open_store(StoreConfig.from_env(home=_isolated_home))

    def stored() -> list:
        with store.sessions.begin() as s:
            checkpoint_id = s.scalar(select(Checkpoint.id).where(Checkpoint.is_active.is_(True)))
            return s.execute(select(UncertaintyScore).where(UncertaintyScore.checkpoint_id == checkpoint_id)
                             .order_by(UncertaintyScore.image_id)).scalars().all()

    assert main(["analyze", "--project", "cx", "--wait"]) == 0
    plain = stored()
    assert plain and all(row.mc_variance is None for row in plain)
    assert main(["analyze", "--project", "cx", "--mc-passes", "3", "--wait"]) == 0
    with_mc = stored()
    assert [r.image_id for r in with_mc] == [r.image_id for r in plain]
    variances = np.array([r.mc_variance for r in with_mc], dtype=float)
    assert np.isfinite(variances).all() and (variances >= 0).all() and (variances > 0).any()
    for name in SCORE_NAMES:   # the other scores are unchanged by the extra passes
        assert [getattr(r, name) for r in with_mc] == [getattr(r, name) for r in plain]
    store.dispose()

    at = _page_app("app.views.uncertain").run()
    assert not at.exception and "mc_variance" in at.dataframe[0].value.columns
