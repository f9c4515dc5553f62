"""How an import's raw labels become stored values, and what the finished import should warn about.

Split from importer.py: the mapper knows the project's class list (names, indices, multi-label lists); the
warnings look at what was imported (a class almost nobody carries, no labels at all).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from db.enums import Task
from db.models import Project
from db.store import Store


class LabelMapper:
    """Turns raw labels (names, indices, lists) into the stored value, or a rejection reason."""

    def __init__(self, project: Project, source_classes: list[str] | None):
        self.task = project.task
        self.classes = list(project.classes)
        self.index = {name: i for i, name in enumerate(self.classes)}
        self.source_classes = source_classes

    def image_label_name(self, raw: Any) -> str | None:
        """Segmentation projects keep image-level labels (e.g. PH2 diagnosis) as metadata."""
        if raw is None:
            return None
        if isinstance(raw, (int, np.integer)) and self.source_classes and 0 <= int(raw) < len(self.source_classes):
            return self.source_classes[int(raw)]
        return str(raw)

    def _one(self, raw: Any) -> int:
        if isinstance(raw, (int, np.integer)):
            if not 0 <= int(raw) < len(self.classes):
                raise ValueError(f"label index {int(raw)} outside 0..{len(self.classes) - 1}")
            return int(raw)
        name = str(raw).strip()
        if name not in self.index:
            raise ValueError(f"unknown class {name!r} (project classes: {', '.join(self.classes)})")
        return self.index[name]

    def value(self, raw: Any) -> Any:
        if raw is None:
            return None
        if self.task == Task.MULTILABEL:
            items = raw if isinstance(raw, (list, tuple)) else [raw]
            return sorted({self._one(r) for r in items})
        if isinstance(raw, (list, tuple)):
            if len(raw) != 1:
                raise ValueError(f"multiclass project but the source gives {len(raw)} classes for one image")
            raw = raw[0]
        return self._one(raw)


def rare_class_warnings(store: Store, project: Project) -> list[str]:
    """Classes named by the source itself: one that almost nobody carries is likely a typo ('pneumonai')."""
    from db.images import label_counts

    with store.sessions.begin() as session:
        counts = label_counts(session, project.id, len(project.classes))
    total = sum(counts)
    rare = [(name, n) for name, n in zip(project.classes, counts) if total >= 20 and n <= max(1, total // 100)]
    return [f"class {name!r} has only {n} of {total} labels: a typo in the source? Re-import with --classes "
            f"to fix the class list (a project's classes can be changed while it has no labels)" for name, n in rare]


def no_label_warning(report, request, project: Project) -> list[str]:
    """A classification import that found no labels says so (a zip of one folder once imported 0 labels
    under a green banner)."""
    if report.imported and not report.labels and not request.unlabeled and project.task != Task.SEGMENTATION:
        return [(f"no labels found: the {report.imported} images were imported unlabeled. For labels, give one "
                "folder per class (normal/…, pneumonia/…) or a CSV with --labels (or choose 'import without "
                "labels' to silence this)")]
    return []
