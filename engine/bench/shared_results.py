"""results.json shared by several bench processes at once (e.g. one per seed, each pinned to a core).

Every change is a locked read-modify-write of the file on disk, so two processes writing cells of the same
run folder never drop each other's rows; nothing is kept in memory between calls.
"""
from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.bench import load_results, write_json


def cell_key(row: dict[str, Any]) -> tuple:
    """A bench ssl/seg cell: (method, label_fraction, seed)."""
    return row["method"], row["label_fraction"], row["seed"]


class SharedResults:
    """One results.json; `add_run` / `add_row` / `done` each see every process's writes."""

    def __init__(self, path: Path, public: Callable[[dict[str, Any]], dict[str, Any]] = dict) -> None:
        self.path = path
        self._public = public          # what a row keeps on disk (internal keys dropped)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        with open(self.path.with_name(self.path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield load_results(self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def add_run(self, run: dict[str, Any]) -> int:
        """Record this invocation; its index is what the rows it writes carry as `run`."""
        with self._locked() as results:
            results["runs"].append(run)
            write_json(self.path, results)
            return len(results["runs"]) - 1

    def add_row(self, row: dict[str, Any]) -> None:
        with self._locked() as results:
            results["rows"].append(self._public(row))
            write_json(self.path, results)

    def read(self) -> dict[str, Any]:
        with self._locked() as results:
            return results

    def done(self, key: Callable[[dict[str, Any]], tuple] = cell_key) -> set[tuple]:
        """Cells already written by any process (checked again before each cell, so a resumed or parallel
        run skips them)."""
        return {key(r) for r in self.read()["rows"]}


def twin_to_run(shared: SharedResults, baseline: str, method: str, fraction: float, seed: int, methods: list[str],
                off: bool = False, references: tuple[str, ...] = ()) -> str | None:
    """The `baseline@method` row this SSL cell still needs (bench ssl and seg), or None: the cell is the
    baseline or a reference row itself, the run has no baseline, twins are `off`, or the twin is done."""
    twin = f"{baseline}@{method}"
    if method == baseline or method in references or baseline not in methods or off or \
            (twin, fraction, seed) in shared.done():
        return None
    return twin
