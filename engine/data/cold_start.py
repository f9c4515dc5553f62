"""Before the first model: serve a diverse first batch, not the images in id order (issue 13 item 6).

With no model the queue once served ~1,340 NORMAL chest X-rays first (id order). Each train image gets an
8x8 grey thumbnail at import (64 bytes in its metadata: a fixed embedding that needs no labels and no
torch); after every import a greedy k-center over those thumbnails picks the first COLD_START_SIZE cases,
each as far as possible from the ones before it, and the queue serves them first until a model ranks the
pool. Torch-free, so the app's uploads run it in-process like the CLI.
"""
from __future__ import annotations

import numpy as np
from sqlalchemy import select

from db.models import Image
from db.settings import set_setting
from db.store import Store

THUMB = 8
COLD_START_SIZE = 500
META_KEY = "thumb8"


def cold_start_key(project_id: int) -> str:
    return f"cold_start_order:{project_id}"


def thumbnail(uint8_image: np.ndarray) -> list[int]:
    """8x8 area-averaged grey thumbnail of a uint8 display image (H, W) or (H, W, 3), as 64 ints."""
    import cv2

    grey = uint8_image if uint8_image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(uint8_image[..., :3]),
                                                                   cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.uint8).ravel().tolist()


def kcenter_order(features: np.ndarray, k: int) -> np.ndarray:
    """Greedy k-center (farthest-first) from the point nearest the mean; deterministic, O(k·N)."""
    x = features.astype(np.float32)
    x -= x.mean(axis=0)
    norms = np.linalg.norm(x, axis=1)
    x /= np.maximum(norms[:, None], 1e-6)  # shape, not brightness: a dark and a bright normal look alike
    first = int(np.argmin(np.linalg.norm(x - x.mean(axis=0), axis=1)))
    order = [first]
    distance = np.linalg.norm(x - x[first], axis=1)
    for _ in range(min(k, len(x)) - 1):
        nxt = int(np.argmax(distance))
        order.append(nxt)
        distance = np.minimum(distance, np.linalg.norm(x - x[nxt], axis=1))
    return np.asarray(order, dtype=np.int64)


def refresh_cold_start(store: Store, project_id: int, k: int = COLD_START_SIZE) -> list[int]:
    """Recompute the project's diverse first batch over its train images that carry a thumbnail."""
    with store.sessions.begin() as session:
        rows = session.execute(select(Image.id, Image.meta).where(Image.project_id == project_id,
                                                                   Image.split == "train")).all()
        kept = [(r.id, r.meta[META_KEY]) for r in rows if isinstance((r.meta or {}).get(META_KEY), list)]
        if len(kept) < 2:
            return []
        ids = [image_id for image_id, _ in kept]
        features = np.array([thumb for _, thumb in kept], dtype=np.float32)
        order = [ids[i] for i in kcenter_order(features, k)]
        set_setting(session, cold_start_key(project_id), order)
    return order
