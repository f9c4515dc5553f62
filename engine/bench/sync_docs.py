"""Copy committed results tables into docs/BENCHMARKS.md, so no figure there is typed by hand.

    python -m engine.bench.sync_docs [--check]

Between `<!-- results:RUN -->` and `<!-- /results:RUN -->` the document holds docs/results/RUN/results.md
(its first heading dropped). --check exits 1 when the document and the results files disagree (a test runs it).
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"(<!-- results:(?P<run>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /results:(?P=run) -->)", re.DOTALL)


def _table(run: str, results: Path) -> str:
    text = (results / run / "results.md").read_text()
    lines = text.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(lines).strip("\n") + "\n"


def synced(doc: str, results: Path) -> str:
    return BLOCK.sub(lambda m: m.group(1) + _table(m.group("run"), results) + m.group(4), doc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    doc = args.doc.read_text()
    new = synced(doc, REPO / "docs" / "results")
    if args.check:
        if new != doc:
            print(f"{args.doc} is out of date with docs/results: run python -m engine.bench.sync_docs")
            return 1
        return 0
    args.doc.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
