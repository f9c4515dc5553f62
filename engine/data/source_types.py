"""The shared vocabulary of import sources: what a walk yields (items, rejections) and how it plans a folder.

sources.py (the walk and dispatch), csv_labels.py and npz_source.py all speak these types, so they live
here, below all three, and every import between them points one way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.data.io import DecodedImage

ESCAPES = "path escapes the source root"

Label = int | str | list[str] | list[int] | None


class SourceError(ValueError):
    """The source as a whole is unusable (e.g. a labels CSV without a header): a usage error."""


@dataclass
class SourceItem:
    name: str
    image: DecodedImage
    label: Label
    mask: np.ndarray | None = None
    group: str | None = None
    path: Path | None = None
    dicom_ref: dict | None = None  # PACS imports: study/series/SOP UIDs and frame (db.dicom_sources)


@dataclass
class Rejected:
    name: str
    reason: str


@dataclass
class SourceInfo:
    """What is known before iterating: sizes for progress bars, classes/split/size for a new project."""

    kind: str  # 'npz' | 'folder' | 'file'
    total: int | None  # candidate items (npz: N; folder: candidate image files; multi-frame adds more)
    class_names: list[str] | None
    split: str | None
    image_size: int | None
    layout: str = ""  # npz | file | class_folders | csv | csv_multilabel | plain
    multi_label: bool = False
    has_masks: bool = False
    ignored: int = 0  # non-image files skipped (csv, json, md, ...)
    skipped: list[str] = field(default_factory=list)  # their relative names, for the report


@dataclass
class ReadTask:
    rel: str
    path: Path
    label: Label = None
    mask_rel: str | None = None
    group: str | None = None


@dataclass
class FolderPlan:
    tasks: list[ReadTask] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    ignored: int = 0
    skipped: list[str] = field(default_factory=list)  # non-image files, by relative name
    layout: str = "plain"
    class_names: list[str] | None = None
    multi_label: bool = False


def inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
