"""bench ssl | seg | al | speed | defaults: reproducible benchmarks on .npz folders (no database).

The suite's module (torch-heavy) is imported only when a bench actually runs, so other commands start fast;
`python -m engine bench ssl --help` shows that suite's own options.
"""
from __future__ import annotations

import argparse
import importlib

SUITES = {"ssl": "engine.bench.ssl", "al": "engine.bench.al", "seg": "engine.bench.seg",
          "speed": "engine.bench.speed", "defaults": "engine.bench.defaults"}


def register(subparsers, parents) -> None:
    p = subparsers.add_parser("bench", help="benchmarks: ssl (SSL vs supervised), seg (segmentation), al (active-learning curves), "
                              "speed (CPU training throughput), defaults (the ablation behind each default)",
                              description="Run `python -m engine bench SUITE --help` for a suite's options.")
    p.add_argument("suite", choices=sorted(SUITES))
    p.add_argument("options", nargs=argparse.REMAINDER, help="the suite's own options")
    p.set_defaults(handler=cmd_bench, verbose=False)


def cmd_bench(args: argparse.Namespace) -> int:
    return int(importlib.import_module(SUITES[args.suite]).main(args.options) or 0)
