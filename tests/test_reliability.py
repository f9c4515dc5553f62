"""The reliability pass's bad-input corpus, run as a test: every input refused with a reason, none crashes."""
from __future__ import annotations

from pathlib import Path

from engine.bench.reliability import bad_inputs, report


def test_every_bad_input_is_refused_with_a_reason_and_nothing_crashes(tmp_path: Path) -> None:
    rows = bad_inputs(tmp_path)
    assert len(rows) >= 30
    assert [r["input"] for r in rows if not r["refused_with_reason"] or r["crash"]] == []
    text = report({"command": "x", "machine": "m", "started": "now", "inputs": rows, "sigkills": [], "faults": []}
                  | {"sigkills": [{"point": "p", "resumed": True, "duplicated_rows": 0, "labels_lost": 0}],
                     "faults": [{"fault": "f", "handled": True, "labels_lost": 0}]})
    assert f"| {len(rows)} | {len(rows)} | 0 |" in text
