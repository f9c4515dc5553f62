"""Labeling-queue latency (a script, not a test): "next image to label" with N images and scores in SQLite.

    python -m engine.bench.queue_speed --n 100000 [--queries 300]

Measures the server-side query `db.analysis.next_to_label` while labels are saved between queries, the
way the Label page uses it. Baseline in the same run: a primary-key lookup of one image row.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import insert, select

from db.analysis import next_to_label
from db.config import StoreConfig
from db.labels import add_label
from db.models import Annotator, Checkpoint, Image, UncertaintyScore
from db.projects import create_project, get_or_create_annotator
from db.queue_rank import publish as publish_queue_ranks
from db.store import open_store
from engine.bench.report import bench_header, write_result


def populate(store, n: int, seed: int = 0) -> tuple[int, int]:
    rng = np.random.default_rng(seed)
    with store.sessions.begin() as s:
        project = create_project(s, "bench", "multiclass", ["a", "b"], 64)
        checkpoint = Checkpoint(project_id=project.id, method="src_mt", path="x.pt", config={}, metrics={},
                                is_active=True)
        s.add(checkpoint)
        s.flush()
        project_id, checkpoint_id = project.id, checkpoint.id
    rows = [{"project_id": project_id, "stored_path": f"images/{i}.png", "sha256": f"{i:064x}", "width": 64,
             "height": 64, "channels": 1, "dtype": "uint8", "split": "train", "source_name": str(i), "meta": {},
             "label_status": "unlabeled"} for i in range(n)]
    with store.sessions.begin() as s:
        for start in range(0, n, 10_000):
            s.execute(insert(Image), rows[start:start + 10_000])
        ids = list(s.scalars(select(Image.id).order_by(Image.id)))
        ranks = rng.permutation(n)
        scores = [{"checkpoint_id": checkpoint_id, "image_id": image_id, "entropy": float(rng.random()),
                   "acquisition_rank": int(rank)} for image_id, rank in zip(ids, ranks)]
        for start in range(0, n, 10_000):
            s.execute(insert(UncertaintyScore), scores[start:start + 10_000])
    publish_queue_ranks(store.sessions, project_id)   # as the analysis job does after writing its ranks
    return project_id, checkpoint_id


def percentile_ms(samples: list[float], q: float) -> float:
    return round(float(np.percentile(samples, q)) * 1000, 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("bench_out/queue_speed.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(StoreConfig.from_env(home=tmp))
        project_id, checkpoint_id = populate(store, args.n)
        query_s, save_s, pk_s = [], [], []
        with store.sessions.begin() as s:
            reader_id = get_or_create_annotator(s, "bench").id
        for _ in range(args.queries):
            with store.sessions.begin() as s:
                t0 = time.perf_counter()
                image_id = next_to_label(s, project_id, reader_id, checkpoint_id)
                query_s.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                s.get(Image, image_id - 1 or image_id)
                pk_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with store.sessions.begin() as s:
                add_label(s, s.get(Image, image_id), s.get(Annotator, reader_id), 1)
            save_s.append(time.perf_counter() - t0)
        store.dispose()
    result = {**bench_header("engine.bench.queue_speed", argv), "images": args.n, "queries": args.queries,
              "next_p50_ms": percentile_ms(query_s, 50), "next_p95_ms": percentile_ms(query_s, 95),
              "save_label_p50_ms": percentile_ms(save_s, 50), "save_label_p95_ms": percentile_ms(save_s, 95),
              "baseline_pk_lookup_p95_ms": percentile_ms(pk_s, 95)}
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
