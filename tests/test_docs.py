"""Every "(DECISIONS: title)" a code comment cites is the start of an entry title in docs/DECISIONS.md."""
from __future__ import annotations

import re

from tests.conftest import REPO_ROOT

CITE = re.compile(r"DECISIONS(?::\s*([^)]+))?\)?")


def _citations() -> list[tuple[str, str | None]]:
    found = []
    for folder in ("engine", "app", "db"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            for line in path.read_text().splitlines():
                for match in CITE.finditer(line):
                    found.append((f"{path.relative_to(REPO_ROOT)}: {line.strip()}", match.group(1)))
    return found


def test_every_decisions_citation_resolves_to_an_entry() -> None:
    decisions = (REPO_ROOT / "docs" / "DECISIONS.md").read_text()
    entries = {m.group(1).strip().rstrip(".").lower() for m in re.finditer(r"\*\*([^*]+)\*\*", decisions)}
    citations = _citations()
    assert citations, "no code cites DECISIONS: the defaults it explains lost their pointers"
    def resolves(title: str | None) -> bool:  # the entry's bold title starts with the cited words
        return title is not None and any(entry.startswith(title.strip().lower()) for entry in entries)

    unresolved = [where for where, title in citations if not resolves(title)]
    assert unresolved == []


def test_benchmarks_tables_equal_their_committed_results_files() -> None:
    """Issue 16 §5: no figure in BENCHMARKS.md typed by hand; the synced blocks match docs/results."""
    from engine.bench.sync_docs import BLOCK, main

    assert BLOCK.search((REPO_ROOT / "docs" / "BENCHMARKS.md").read_text())
    assert main(["--check"]) == 0
