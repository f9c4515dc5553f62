"""Shared tail of every benchmark script: the command that produced it, the machine, one JSON file."""
from __future__ import annotations

import json
import platform
import sys
from pathlib import Path
from typing import Any

from engine.bench import write_json


def bench_header(module: str, argv: list[str] | None) -> dict[str, str]:
    args = sys.argv[1:] if argv is None else argv
    return {"command": f"python -m {module} " + " ".join(args),
            "machine": f"{platform.node()} {platform.machine()} ({platform.processor() or 'cpu'})"}


def write_result(out: Path, result: dict[str, Any]) -> None:
    write_json(out, result)
    print(json.dumps(result, indent=2))
