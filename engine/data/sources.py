"""Walk an import source (.npz bundle, folder, single file) and yield decoded items or rejections.

The walk never decodes anything but images, never follows a link out of the source root, and
turns every unusable candidate into a Rejected with a reason, so one bad file never stops an
import and the report can list all of them. Layout rules live in `_plan_folder`; the labels CSV
is parsed in csv_labels.py and .npz bundles are read in npz_source.py.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from engine.data.csv_labels import read_csv
from engine.data.io import DecodedImage, ImageReadError, peek_size, read_image, read_mask
from engine.data.npz_source import iter_npz, npz_header
from engine.data.source_types import (
    ESCAPES,
    FolderPlan,
    Label,
    ReadTask,
    Rejected,
    SourceError,
    SourceInfo,
    SourceItem,
    inside,
)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".dcm", ".dicom", "", ".bmp", ".tif", ".tiff"}
MASK_SUFFIXES = ("_mask", "_segmentation")  # x.png + x_mask.png beside it
MASK_DIR = "masks"  # images/x.png + masks/x.png, or x.png + masks/x.png
SPLITS = ("train", "val", "test")
_IGNORED_PREFIXES = ("readme", "license", "licence", "copying", "dicomdir")


def _dataset_classes(folder: Path) -> list[str] | None:
    try:
        classes = json.loads((folder / "dataset.json").read_text(encoding="utf-8")).get("classes")
    except (OSError, ValueError, AttributeError):
        return None
    return [str(c) for c in classes] if isinstance(classes, list) and classes else None


def _canon(label: str, class_names: list[str] | None) -> str:
    """Spell a folder/CSV class as dataset.json does when they differ only in case (NORMAL/normal)."""
    if class_names and label not in class_names:
        for name in class_names:
            if name.lower() == label.lower():
                return name
    return label


def _is_candidate(name: str) -> bool:
    suffix = Path(name).suffix.lower()
    if name.lower().startswith(_IGNORED_PREFIXES):
        return False
    return suffix in IMAGE_SUFFIXES or suffix[1:].isdigit()  # UID-named DICOM: 1.2.840...113


def _walk(root: Path, plan: FolderPlan) -> list[str]:
    """Sorted relative posix paths of candidate files; links out of the root become rejections."""
    found: list[str] = []

    def visit(rel_dir: str, folder: Path) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            plan.rejected.append(Rejected(rel_dir or ".", f"cannot read folder ({exc.strerror})"))
            return
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if entry.name.startswith(".") or entry.name == "__MACOSX":
                continue
            if entry.is_symlink():
                try:
                    target = Path(entry.path).resolve()
                except (OSError, RuntimeError):  # a link loop
                    plan.rejected.append(Rejected(rel, "broken symbolic link"))
                    continue
                if not target.exists():  # before the root check: a dangling link is broken, not an escape
                    plan.rejected.append(Rejected(rel, "broken symbolic link"))
                    continue
                if not inside(target, root):
                    plan.rejected.append(Rejected(rel, ESCAPES))
                    continue
                if target.is_dir():  # inside the root: its files are walked there, once
                    plan.ignored += 1
                    continue
            if entry.is_dir(follow_symlinks=False):
                visit(rel, Path(entry.path))
            elif not _is_candidate(entry.name):
                plan.ignored += 1
                if entry.name != "dataset.json":
                    plan.skipped.append(rel)
            elif entry.is_file():
                found.append(rel)
            else:
                plan.rejected.append(Rejected(rel, "not a regular file"))

    visit("", root)
    return found


def _split_masks(files: list[str], plan: FolderPlan) -> tuple[list[str], dict[str, str]]:
    """Separate mask files from images; returns (images, image rel -> mask rel)."""
    in_mask_dir = [f for f in files if MASK_DIR in [p.lower() for p in f.split("/")[:-1]]]
    mask_set = set(in_mask_dir)
    others = [f for f in files if f not in mask_set]
    by_stem: dict[tuple[str, str], str] = {}
    for rel in in_mask_dir + others:
        parent, _, fname = rel.rpartition("/")
        by_stem.setdefault((parent.lower(), Path(fname).stem.lower()), rel)
    stems = {(f.rpartition("/")[0].lower(), Path(f).stem.lower()) for f in others}
    paired = {f for f in others for s in MASK_SUFFIXES
              if Path(f).stem.lower().endswith(s)
              and (f.rpartition("/")[0].lower(), Path(f).stem.lower()[: -len(s)]) in stems}
    images = [f for f in others if f not in paired]
    masks: dict[str, str] = {}
    for rel in images:
        parts = rel.lower().split("/")
        parent, stem = "/".join(parts[:-1]), Path(parts[-1]).stem
        options = [(parent, stem + s) for s in MASK_SUFFIXES]
        options.append((f"{parent}/{MASK_DIR}" if parent else MASK_DIR, stem))
        options += [("/".join(parts[:i] + [MASK_DIR] + parts[i + 1:-1]), stem)
                    for i, p in enumerate(parts[:-1]) if p == "images"]
        hit = next((by_stem[o] for o in options if o in by_stem), None)
        if hit is not None:
            masks[rel] = hit
    used = set(masks.values())
    plan.rejected += [Rejected(f, "mask has no matching image") for f in in_mask_dir if f not in used]
    return images, masks


def _plan_folder(root: Path, labels_csv: Path | None) -> FolderPlan:
    plan = FolderPlan()
    images, masks = _split_masks(_walk(root, plan), plan)
    if labels_csv is None and (root / "labels.csv").is_file():
        labels_csv = root / "labels.csv"
    dataset_classes = _dataset_classes(root)
    labels: dict[str, tuple[Label, str | None]] = {}
    if labels_csv is not None:

        labels = read_csv(Path(labels_csv), root, images, plan)
    else:
        top_dirs = sorted({f.split("/", 1)[0] for f in images if "/" in f})
        with os.scandir(root) as entries:
            child_dirs = [e.name for e in entries if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")
                          and e.name != "__MACOSX" and e.name.lower() != MASK_DIR]
        if all("/" in f for f in images) and len(top_dirs) >= 2 and sorted(child_dirs) == top_dirs:
            plan.layout, plan.class_names = "class_folders", top_dirs
            labels = {f: (f.split("/", 1)[0], None) for f in images}
    if dataset_classes:
        plan.class_names = dataset_classes
    for rel in images:
        label, group = labels.get(rel, (None, None))
        if isinstance(label, str):
            label = _canon(label, plan.class_names)
        elif isinstance(label, list):
            label = [_canon(c, plan.class_names) for c in label]
        plan.tasks.append(ReadTask(rel, root / rel, label, masks.get(rel), group))
    return plan


def _read(task: ReadTask, root: Path) -> tuple[list[DecodedImage], np.ndarray | None]:
    try:
        images = read_image(task.path)
    except ImageReadError:
        raise
    except Exception as exc:  # a decoder bug in one file must not abort the import
        raise ImageReadError(f"unreadable ({type(exc).__name__}: {exc})") from exc
    if not task.mask_rel:
        return images, None
    try:
        return images, read_mask(root / task.mask_rel)
    except Exception as exc:  # same: report it and go on
        raise ImageReadError(f"mask {task.mask_rel}: {exc}") from exc


def _frames(task: ReadTask, root: Path) -> Iterator[SourceItem | Rejected]:
    try:
        images, mask = _read(task, root)
    except ImageReadError as exc:
        yield Rejected(task.rel, str(exc))
        return
    for k, image in enumerate(images):
        if mask is not None and mask.shape != image.pixels.shape[:2]:
            (mh, mw), (h, w) = mask.shape, image.pixels.shape[:2]
            yield Rejected(task.rel, f"mask size {mw}x{mh} does not match image size {w}x{h}")
            return
        name = task.rel if len(images) == 1 else f"{task.rel}#frame{k}"
        yield SourceItem(name, image, task.label, mask, task.group or image.patient_id, task.path)


def _check_source(source: Path) -> Path:
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"source not found: {source}")
    resolved = source.resolve()
    if not (resolved.is_file() or resolved.is_dir()):  # /dev/zero, a FIFO, a socket: never read
        raise SourceError(f"not a regular file or folder: {source}")
    return resolved


def inspect_source(source: Path, labels_csv: Path | None = None) -> SourceInfo:
    """Cheap look at a source (headers only) before importing it."""
    source = _check_source(source)
    if source.is_file() and source.suffix.lower() == ".npz":

        shape, labels = npz_header(source, "images"), npz_header(source, "labels")
        size = shape[1] if shape and len(shape) >= 3 and shape[1] == shape[2] else None
        split = source.stem if source.stem in SPLITS else None
        return SourceInfo("npz", shape[0] if shape else None, _dataset_classes(source.parent), split, size,
                          "npz", bool(labels and len(labels) == 2), npz_header(source, "masks") is not None)
    if source.is_file():
        hw = peek_size(source)
        size = hw[0] if hw and hw[0] == hw[1] else None
        return SourceInfo("file", 1, _dataset_classes(source.parent), None, size, "file")
    plan = _plan_folder(source, labels_csv)
    csv_name = labels_csv.name if labels_csv is not None else None
    return SourceInfo("folder", len(plan.tasks), plan.class_names, None, _common_size(plan), plan.layout,
                      plan.multi_label, any(t.mask_rel for t in plan.tasks), plan.ignored,
                      [name for name in plan.skipped if name != csv_name])


def _common_size(plan: FolderPlan) -> int | None:
    """The square size all images share, from headers; stops at the first disagreement."""
    size = None
    for task in plan.tasks:
        hw = peek_size(task.path)
        if hw is None or hw[0] != hw[1] or (size is not None and hw[0] != size):
            return None
        size = hw[0]
    return size


def iter_source(source: Path, labels_csv: Path | None = None) -> Iterator[SourceItem | Rejected]:
    """Every item of the source in a deterministic order, or a Rejected with the reason."""
    source = _check_source(source)
    if source.is_file() and source.suffix.lower() == ".npz":

        yield from iter_npz(source)
        return
    if source.is_file():
        yield from _frames(ReadTask(source.name, source), source.parent)
        return
    plan = _plan_folder(source, labels_csv)
    yield from plan.rejected
    for task in plan.tasks:
        yield from _frames(task, source)
