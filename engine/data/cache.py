"""uint8 training cache per (project, size): decoded once, then memory-mapped by every training run.

Torch-free so the worker's data loading and any analysis share it. The cache grows incrementally: images
imported after it was built are decoded and appended on next use; images never change (content-addressed).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import select

from db.images import resolve_path
from db.models import Image
from db.store import Store
from engine.data.io import load_original, to_cache_array


@dataclass
class CacheView:
    ids: np.ndarray          # (N,) int64 image ids, ascending
    images: np.ndarray       # (N, S, S) or (N, S, S, 3) uint8, memory-mapped

    def rows(self, image_ids: np.ndarray | list[int]) -> np.ndarray:
        """Row index of each image id (all must be cached)."""
        positions = np.searchsorted(self.ids, np.asarray(image_ids, dtype=np.int64))
        return positions


def cache_stem(store: Store, project_id: int, size: int, channels: int) -> Path:
    return store.config.cache_dir / f"p{project_id}_{size}px_c{channels}"


def _load_existing(stem: Path) -> tuple[np.ndarray, np.ndarray | None]:
    ids_path, images_path = stem.with_suffix(".ids.npy"), stem.with_suffix(".images.npy")
    if not (ids_path.exists() and images_path.exists()):
        return np.zeros(0, dtype=np.int64), None
    ids, images = np.load(ids_path), np.load(images_path, mmap_mode="r")
    if len(ids) != len(images):  # interrupted between the two writes: rebuild
        return np.zeros(0, dtype=np.int64), None
    return ids, images


def build_cache(store: Store, project_id: int, size: int, channels: int) -> CacheView:
    """Return the cache for every image of the project, decoding only images not cached yet."""
    stem = cache_stem(store, project_id, size, channels)
    with store.sessions.begin() as session:
        rows = session.execute(select(Image.id, Image.stored_path, Image.window_center, Image.window_width)
                               .where(Image.project_id == project_id).order_by(Image.id)).all()
    cached_ids, cached = _load_existing(stem)
    wanted = np.array([r.id for r in rows], dtype=np.int64)
    cached_set = set(cached_ids.tolist())
    missing = [r for r in rows if r.id not in cached_set]
    if cached is not None and not missing:
        keep = np.isin(cached_ids, wanted)
        return CacheView(ids=cached_ids[keep], images=cached[keep] if not keep.all() else cached)
    shape = (size, size) if channels == 1 else (size, size, 3)
    fresh = np.empty((len(missing), *shape), dtype=np.uint8)
    for i, row in enumerate(missing):
        window = (row.window_center, row.window_width) if row.window_width else None
        fresh[i] = to_cache_array(load_original(resolve_path(store.config.home, row.stored_path)), size,
                                  channels, window)
    all_ids = np.concatenate([cached_ids, [r.id for r in missing]]).astype(np.int64)
    order = np.argsort(all_ids, kind="stable")
    images = np.concatenate([np.asarray(cached), fresh]) if cached is not None else fresh
    _write_atomic(stem, all_ids[order], images[order])
    return build_cache(store, project_id, size, channels)


def _write_atomic(stem: Path, ids: np.ndarray, images: np.ndarray) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    for suffix, array in ((".images.npy", images), (".ids.npy", ids)):
        tmp = stem.with_suffix(f"{suffix}.tmp{os.getpid()}")
        with open(tmp, "wb") as handle:
            np.save(handle, array)
        os.replace(tmp, stem.with_suffix(suffix))
