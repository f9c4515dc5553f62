"""ISIC 2018 Task 3 (HAM10000) ground truth and the SRC-MT protocol (METHODS §5, pitfall P6)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

ISIC_CLASSES = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")


def load_isic2018_groundtruth(csv_path: str | Path) -> tuple[list[str], np.ndarray]:
    """(image ids, int64 class indices in ISIC_CLASSES order) from ISIC2018_Task3_Training_GroundTruth.csv.

    Columns are selected BY NAME: the papers' `[1:-1]` slicing silently dropped VASC (P6). Every row must be
    one-hot; anything else is an error rather than a guess.
    """
    with open(csv_path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("image", *ISIC_CLASSES) if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{csv_path}: missing columns {missing}")
        ids, labels = [], []
        for line, row in enumerate(reader, start=2):
            onehot = np.array([float(row[c]) for c in ISIC_CLASSES])
            if onehot.sum() != 1.0 or not np.isin(onehot, (0.0, 1.0)).all():
                raise ValueError(f"{csv_path}:{line}: row is not one-hot: {onehot.tolist()}")
            ids.append(row["image"])
            labels.append(int(onehot.argmax()))
    return ids, np.asarray(labels, dtype=np.int64)


def srcmt_split(n: int, seed: int, sizes: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """Random train/val/test split: 7,000 / 1,000 / 2,015 on the 10,015 ISIC images (maintainer, SRC-MT#1),
    7:1:2 for other sizes. The papers never released theirs (P7): seed it and store it with the experiment."""
    if sizes is None:
        sizes = (7000, 1000) if n == 10015 else (int(n * 0.7), int(n * 0.1))
    order = np.random.default_rng(seed).permutation(n)
    n_train, n_val = sizes
    return {"train": order[:n_train], "val": order[n_train:n_train + n_val], "test": order[n_train + n_val:]}


def srcmt_labeled_mask(n_train: int, fraction: float = 0.2) -> np.ndarray:
    """SRC-MT labels the FIRST rows of its training list (1,400 of 7,000 at 20 %), not a random subset."""
    mask = np.zeros(n_train, dtype=bool)
    mask[: round(fraction * n_train)] = True
    return mask
