"""Benchmark provenance: results.json must name the thread count the cells really trained with."""
from __future__ import annotations

import torch

from engine.bench import machine


def test_machine_line_reports_requested_threads_not_process_default() -> None:
    # Regression: bench ssl/seg --threads 1 recorded the process default ("2 torch threads").
    assert ", 1 torch threads," in machine(1)
    assert f", {torch.get_num_threads()} torch threads," in machine(None)
