"""ChestX-ray14 (NIH) official lists and the S2MTS2/ACPL per-class labeled sampling (METHODS §5, P7)."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DISEASES = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
            "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia")
NO_FINDING = "No Finding"
CLASSES = (*DISEASES, NO_FINDING)  # S2MTS2 trains 15 outputs; AUC is averaged over the 14 diseases only


@dataclass(frozen=True)
class DataEntry:
    image_ids: list[str]
    labels: np.ndarray  # (N, 15) float32 multi-hot over CLASSES
    patient_ids: np.ndarray  # (N,) str


def load_data_entry(csv_path: str | Path) -> DataEntry:
    """Data_Entry_2017.csv: 'Finding Labels' is pipe-separated ('Effusion|Mass' or 'No Finding')."""
    ids, rows, patients = [], [], []
    index = {name: i for i, name in enumerate(CLASSES)}
    with open(csv_path, newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            findings = [f.strip() for f in row["Finding Labels"].split("|") if f.strip()]
            unknown = [f for f in findings if f not in index]
            if unknown:
                raise ValueError(f"{csv_path}:{line}: unknown finding(s) {unknown}")
            if NO_FINDING in findings and len(findings) > 1:
                raise ValueError(f"{csv_path}:{line}: 'No Finding' combined with findings {findings}")
            multihot = np.zeros(len(CLASSES), dtype=np.float32)
            multihot[[index[f] for f in findings]] = 1.0
            ids.append(row["Image Index"].strip())
            rows.append(multihot)
            patients.append(row["Patient ID"].strip())
    return DataEntry(ids, np.stack(rows) if rows else np.zeros((0, len(CLASSES)), np.float32),
                     np.asarray(patients))


def read_list(path: str | Path) -> list[str]:
    """train_val_list.txt / test_list.txt: one image file name per line."""
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]


def official_split(entry: DataEntry, train_val_list: str | Path, test_list: str | Path) -> dict[str, np.ndarray]:
    """Row indices of the official train_val (86,524) and test (25,596) lists; unknown names are an error."""
    position = {name: i for i, name in enumerate(entry.image_ids)}
    out = {}
    for split, path in (("train_val", train_val_list), ("test", test_list)):
        names = read_list(path)
        missing = [n for n in names if n not in position]
        if missing:
            raise ValueError(f"{path}: {len(missing)} names not in Data_Entry (first: {missing[0]})")
        out[split] = np.asarray([position[n] for n in names], dtype=np.int64)
    if np.intersect1d(out["train_val"], out["test"]).size:
        raise ValueError("train_val and test lists overlap")
    return out


def per_class_ratio_sample(labels: np.ndarray, ratio: float, seed: int) -> np.ndarray:
    """FBLADL/ACPL semi_sample.py: for each of the 15 labels take floor(ratio * n_c) random images carrying it,
    then the union (so the overall fraction is only approximately `ratio`). Sorted row indices."""
    rng = np.random.default_rng(seed)
    chosen: set[int] = set()
    for c in range(labels.shape[1]):
        carriers = np.flatnonzero(labels[:, c] > 0.5)
        take = int(np.floor(ratio * len(carriers)))
        if take:
            chosen.update(rng.choice(carriers, size=take, replace=False).tolist())
    return np.asarray(sorted(chosen), dtype=np.int64)
