"""Every method trains with any budget on a project of 10 labeled images (issue 13: budget calibration once ran
past a 6-step plan: `index 6 is out of bounds for axis 0 with size 6`)."""
from __future__ import annotations

import numpy as np
import pytest

from engine.core.config import DataConfig, TrainConfig
from engine.data.catalog import CLASSIFICATION_METHODS, SEGMENTATION_METHODS
from engine.loaders.datasets import ArrayData
from engine.training.loop import run_training


def _data(segmentation: bool, n: int = 24, labeled: int = 10, size: int = 32) -> ArrayData:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (n, size, size), dtype=np.uint8)
    val = rng.integers(0, 255, (6, size, size), dtype=np.uint8)
    if segmentation:
        masks = (images > 128).astype(np.int64)
        mask = np.zeros(n, dtype=bool)
        mask[:labeled] = True
        return ArrayData(images, masks, ("background", "lesion"), task="segmentation", labeled_mask=mask,
                         val_images=val, val_labels=(val > 128).astype(np.int64))
    labels = np.where(np.arange(n) < labeled, np.arange(n) % 2, -1)
    return ArrayData(images, labels, ("a", "b"), val_images=val, val_labels=np.arange(6) % 2)


@pytest.mark.parametrize("method", [*CLASSIFICATION_METHODS, *SEGMENTATION_METHODS])
@pytest.mark.parametrize("epochs", [1, 2])
def test_budgeted_run_on_ten_labeled_images(method: str, epochs: int, tmp_path) -> None:
    segmentation = method in SEGMENTATION_METHODS
    cfg = TrainConfig(method=method, backbone="unet_small" if segmentation else "compact_cnn", epochs=epochs,
                      budget_minutes=0.05, patience=None, num_threads=1, eval_batch_size=16,
                      data=DataConfig(labeled_batch=4, unlabeled_ratio=1.0))
    result = run_training(cfg, _data(segmentation), checkpoint_dir=tmp_path)
    assert 1 <= result.steps_run <= result.planned_steps <= epochs * result.steps_per_epoch
    assert result.history and (tmp_path / "last.pt").exists()
