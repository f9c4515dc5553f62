"""Mutation score of engine/methods from mutmut's own results (run `python -m mutmut run` first).

    python -m engine.bench.mutation_report --out docs/results/mutmut

Reads `python -m mutmut results --all true`, counts killed / survived / no tests / timeout per file, and
writes results.json + results.md. Score = killed / (killed + survived + no tests + timeout) over the mutants
mutmut checked; mutants not checked yet are counted apart, never as killed.
"""
from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
from pathlib import Path

from engine.bench.report import bench_header

REPO = Path(__file__).resolve().parents[2]
STATUSES = ("killed", "survived", "no tests", "timeout", "suspicious", "not checked")


def parse(text: str) -> dict[str, collections.Counter]:
    per_file: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for line in text.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if not sep or "__mutmut_" not in name:
            continue
        module = name.split(".x")[0]  # engine.methods.ema.x_ema_rate__mutmut_3 -> engine.methods.ema
        per_file[module][status.strip()] += 1
    return per_file


def score(counts: collections.Counter) -> float | None:
    checked = sum(counts[s] for s in STATUSES if s != "not checked")
    return None if checked == 0 else counts["killed"] / checked


def report(result: dict) -> str:
    table_command = result["command"].split(" --mutmut-command ")[0]  # its argument is the next line's command
    lines = ["# Mutation testing of engine/methods (mutmut)", "", f"Mutants: `{result['mutmut_command']}`  ",
             f"Table: `{table_command}`  ", result["machine"], "",
             (f"**Score {result['score_percent']} % over {result['checked']} checked mutants** "
             f"({result['not_checked']} of {result['total']} not checked yet)."), "",
             "| module | killed | survived | no tests | timeout | not checked | score |", "|---|---|---|---|---|---|---|"]
    for module, c in sorted(result["modules"].items()):
        s = score(collections.Counter(c))
        lines.append(f"| `{module}` | {c.get('killed', 0)} | {c.get('survived', 0)} | {c.get('no tests', 0)} | "
                     f"{c.get('timeout', 0)} | {c.get('not checked', 0)} | {'–' if s is None else f'{100 * s:.1f} %'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/results/mutmut"))
    parser.add_argument("--mutmut-command", default="python -m mutmut run", help="what produced the results")
    args = parser.parse_args(argv)
    text = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=REPO,
                          capture_output=True, text=True, check=False).stdout
    modules = parse(text)
    total = collections.Counter()
    for counts in modules.values():
        total.update(counts)
    checked = sum(total[s] for s in STATUSES if s != "not checked")
    overall = score(total)
    result = {**bench_header("engine.bench.mutation_report", argv), "mutmut_command": args.mutmut_command,
              "modules": {m: dict(c) for m, c in modules.items()}, "total": sum(total.values()),
              "checked": checked, "not_checked": total["not checked"],
              "score_percent": None if overall is None else round(100 * overall, 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "results.md").write_text(report(result))
    print(report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
