"""Two bench processes writing one results.json (one per seed, each on its own core) keep every row."""
from __future__ import annotations

import multiprocessing
from pathlib import Path

from engine.bench.shared_results import SharedResults


def _write_rows(path: str, seed: int, n: int) -> None:
    shared = SharedResults(Path(path), lambda r: {k: v for k, v in r.items() if not k.startswith("_")})
    run = shared.add_run({"command": f"seed {seed}"})
    for i in range(n):
        shared.add_row({"run": run, "method": f"m{i}", "label_fraction": 0.05, "seed": seed, "_steps": i})


def test_parallel_writers_lose_no_row_and_keep_runs_apart(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_write_rows, args=(str(path), seed, 25)) for seed in (0, 1, 2)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
        assert w.exitcode == 0
    results = SharedResults(path).read()
    assert len(results["runs"]) == 3 and len(results["rows"]) == 75
    cells = SharedResults(path).done(lambda r: (r["method"], r["seed"]))
    assert cells == {(f"m{i}", s) for i in range(25) for s in (0, 1, 2)}
    for row in results["rows"]:  # each row names the run of the process that wrote it, internal keys dropped
        assert results["runs"][row["run"]]["command"] == f"seed {row['seed']}" and "_steps" not in row


def test_a_resumed_run_sees_cells_written_before(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    SharedResults(path).add_row({"method": "supervised", "label_fraction": 0.2, "seed": 1})
    assert SharedResults(path).done(lambda r: (r["method"], r["label_fraction"], r["seed"])) == {("supervised", 0.2, 1)}
