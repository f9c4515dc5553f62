"""Import-speed benchmark (a script, not a test): register N small images from one .npz bundle.

    python -m engine.bench.import_speed --n 20000 [--size 64] [--out bench_out/import_speed.json]

Reports images/s of the full pipeline (decode, hash, dedupe, PNG store, SQLite rows + labels) against a
baseline measured in the same run: the file-store work alone (hash + PNG write, no database), so the ratio
shows what the database and bookkeeping cost on top of unavoidable I/O.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from db.config import StoreConfig
from db.store import open_store
from engine.bench.report import bench_header, write_result
from engine.data.importer import ImportRequest, run_import
from engine.data.io import content_hash, save_original


def make_bundle(path: Path, n: int, size: int, seed: int = 0) -> None:
    """Distinct images (a smooth gradient plus noise) so no two dedupe; two classes."""
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 200, size * size, dtype=np.float32).reshape(size, size)
    images = (base[None] + rng.integers(0, 55, (n, size, size))).astype(np.uint8)
    np.savez(path, images=images, labels=rng.integers(0, 2, n).astype(np.uint8))


def baseline_store_only(bundle: Path, folder: Path) -> float:
    images = np.load(bundle)["images"]
    start = time.perf_counter()
    for i, pixels in enumerate(images):
        content_hash(pixels)
        save_original(pixels, folder / str(i))
    return len(images) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("bench_out/import_speed.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        bundle = tmp_path / "train.npz"
        make_bundle(bundle, args.n, args.size)
        baseline = baseline_store_only(bundle, tmp_path / "baseline")
        store = open_store(StoreConfig.from_env(home=tmp_path / "home"))
        start = time.perf_counter()
        report = run_import(store, ImportRequest(project="bench", source=bundle, task="multiclass",
                                                 classes=["a", "b"], annotator="bench"))
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        again = run_import(store, ImportRequest(project="bench", source=bundle, annotator="bench"))
        rerun_seconds = time.perf_counter() - start
        store.dispose()
    result = {**bench_header("engine.bench.import_speed", argv),
              "images": report.imported, "seconds": round(seconds, 2),
              "images_per_s": round(report.imported / seconds, 1),
              "baseline_store_only_images_per_s": round(baseline, 1),
              "ratio_to_baseline": round(report.imported / seconds / baseline, 3),
              "rerun_duplicates": len(again.duplicates), "rerun_seconds": round(rerun_seconds, 2)}
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
