"""S²MTS²'s label-free stage 1, trained once per project and reused until the pool grows (issue 16 §3).

Stage 1 (contrastive pre-training on the whole pool) never looks at a label, so a new label or an
active-learning round does not change it. A train job passes a file keyed by the settings stage 1
depends on as `stage1_load` (present: the run skips stage 1) or `stage1_save` (absent: the run writes it after
stage 1). The decision is written into the job's run folder, so a resumed attempt runs the same plan. The
cache is dropped when the pool has grown by more than REUSE_GROWTH since it was made.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from engine.core.config import TrainConfig

REUSE_GROWTH = 0.25  # pool growth (fraction) beyond which stage 1 is trained again


def _key(cfg: TrainConfig) -> str:
    """What stage 1 depends on: backbone, image size, augmentation, seed and the stage-1 parameters."""
    params = {k: v for k, v in dict(cfg.method_params or {}).items() if k not in ("stage1_load", "stage1_save")}
    payload = {"backbone": cfg.backbone, "data": cfg.to_dict()["data"], "seed": cfg.seed, "params": params}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def stage1_params(folder: Path, run_dir: Path, cfg: TrainConfig, pool_size: int) -> tuple[dict[str, Any], bool]:
    """(method_params with stage1_load or stage1_save set, whether an existing stage 1 is reused)."""
    decided = run_dir / "stage1.json"
    if decided.exists():  # a resumed attempt: the first attempt's decision, unchanged
        record = json.loads(decided.read_text())
        return record["params"], record["reused"]
    key = _key(cfg)
    path, meta = folder / f"{key}.pt", folder / f"{key}.json"
    made_at = json.loads(meta.read_text()).get("pool_size") if meta.exists() else None
    reuse = path.exists() and made_at is not None and pool_size <= made_at * (1.0 + REUSE_GROWTH)
    if not reuse:
        path.unlink(missing_ok=True)  # grown pool or no record of its size: train stage 1 again
        folder.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps({"pool_size": pool_size}))
    params = {**dict(cfg.method_params or {}), ("stage1_load" if reuse else "stage1_save"): str(path)}
    run_dir.mkdir(parents=True, exist_ok=True)
    decided.write_text(json.dumps({"params": params, "reused": reuse}))
    return params, reuse
