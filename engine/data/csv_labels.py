"""Labels CSV for a folder source: `filename,label` or a multi-label `filename,<class>,...` 0/1 table.

Split out of sources.py to keep the folder walk short. Every bad row becomes a Rejected on the
plan (never an exception), except a CSV that cannot be read at all, which is a SourceError.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

from engine.data.source_types import ESCAPES, FolderPlan, Label, Rejected, SourceError, inside

FILE_COLUMNS = {"filename", "file", "file_name", "image", "image_id", "image_name", "path", "name"}
GROUP_COLUMNS = {"patient", "patient_id", "patientid", "group", "subject", "subject_id"}
_BINARY = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1, "no": 0, "yes": 1, "": 0}


def _escapes(name: str, root: Path) -> bool:
    """True for absolute paths, '..' parts, or a path whose links resolve outside the root."""
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in name.split("/"):
        return True
    try:
        return not inside((root / name).resolve(), root)
    except (OSError, RuntimeError):
        return True


def read_csv(csv_path: Path, root: Path, images: list[str], plan: FolderPlan) -> dict[str, tuple[Label, str | None]]:
    """Labels by image rel path from `filename,label` or `filename,<class1>,<class2>...` (0/1)."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"cannot read labels CSV {csv_path}: {exc}") from exc
    if not rows or len(rows[0]) < 2:
        raise SourceError(f"labels CSV {csv_path.name} needs a header: filename,label or filename,<class>,...")
    known = {rel: rel for rel in images}
    stem_of = {rel.rsplit(".", 1)[0] if "." in rel.rsplit("/", 1)[-1] else rel: rel for rel in images}
    header = [h.strip() for h in rows[0]]
    if header[0].replace("\\", "/") in known or header[0] in stem_of:
        header = ["filename", "label"] + [f"column_{i}" for i in range(2, len(header))]  # no header row
    else:
        rows = rows[1:]
    file_col = next((i for i, h in enumerate(header) if h.lower() in FILE_COLUMNS), 0)
    group_col = next((i for i, h in enumerate(header) if i != file_col and h.lower() in GROUP_COLUMNS), None)
    label_cols = [i for i in range(len(header)) if i not in (file_col, group_col)]
    plan.multi_label = len(label_cols) > 1
    plan.layout = "csv_multilabel" if plan.multi_label else "csv"
    labels: dict[str, tuple[Label, str | None]] = {}
    seen_values: set[str] = set()
    for row in rows:
        cells = [c.strip() for c in row] + [""] * (len(header) - len(row))
        name = cells[file_col].replace("\\", "/")
        rel = known.get(name) or stem_of.get(name)
        group = (cells[group_col] or None) if group_col is not None else None
        if _escapes(name, root):
            plan.rejected.append(Rejected(name, ESCAPES))
        elif rel is None:
            plan.rejected.append(Rejected(name, "file listed in CSV not found"))
        elif rel in labels:
            plan.rejected.append(Rejected(name, "file listed twice in the CSV"))
        elif plan.multi_label:
            bad = [header[i] for i in label_cols if cells[i].lower() not in _BINARY]
            if bad:
                plan.rejected.append(Rejected(name, f"CSV value for class '{bad[0]}' is not 0 or 1"))
                continue
            positive = [header[i] for i in label_cols if _BINARY[cells[i].lower()]]
            labels[rel] = (positive, group)
        else:
            value = cells[label_cols[0]]
            if value:
                seen_values.add(value)
            labels[rel] = (value or None, group)
    plan.class_names = [header[i] for i in label_cols] if plan.multi_label else sorted(seen_values) or None
    return labels
