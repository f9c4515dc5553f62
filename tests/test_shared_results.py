"""Two bench processes writing one results.json (one per seed, each on its own core) keep every row."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from engine.bench.shared_results import SharedResults
from tests.conftest import REPO_ROOT


def _write_rows(path: str, seed: int, n: int) -> None:
    shared = SharedResults(Path(path), lambda r: {k: v for k, v in r.items() if not k.startswith("_")})
    run = shared.add_run({"command": f"seed {seed}"})
    for i in range(n):
        shared.add_row({"run": run, "method": f"m{i}", "label_fraction": 0.05, "seed": seed, "_steps": i})


def test_parallel_writers_lose_no_row_and_keep_runs_apart(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    # plain interpreters, not multiprocessing: spawn re-runs __main__, which AppTest tests earlier in the suite
    # leave pointing at a generated script (CI: NameError '__args' in every writer)
    code = "import sys; from tests.test_shared_results import _write_rows; _write_rows(sys.argv[1], int(sys.argv[2]), 25)"
    writers = [subprocess.Popen([sys.executable, "-c", code, str(path), str(seed)], cwd=REPO_ROOT)
               for seed in (0, 1, 2)]
    for w in writers:
        assert w.wait(120) == 0
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
