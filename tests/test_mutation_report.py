"""The mutmut report names each command once and scores killed over checked mutants."""
from __future__ import annotations

from engine.bench.mutation_report import parse, report


def test_report_names_each_command_once_and_scores_checked_mutants() -> None:
    text = ("    engine.methods.ema.x_rate__mutmut_1: killed\n    engine.methods.ema.x_rate__mutmut_2: survived\n"
            "    engine.methods.ema.x_rate__mutmut_3: killed\n    engine.methods.base.x_f__mutmut_1: not checked\n")
    modules = parse(text)
    assert dict(modules["engine.methods.ema"]) == {"killed": 2, "survived": 1}
    mutmut = "python -m mutmut run --max-children 2"
    result = {"command": f"python -m engine.bench.mutation_report --out o --mutmut-command {mutmut}",
              "mutmut_command": mutmut, "machine": "vm", "modules": {m: dict(c) for m, c in modules.items()},
              "total": 4, "checked": 3, "not_checked": 1, "score_percent": 66.7}
    md = report(result)
    assert md.count(mutmut) == 1 and "Table: `python -m engine.bench.mutation_report --out o`" in md
    assert "| `engine.methods.ema` | 2 | 1 | 0 | 0 | 0 | 66.7 % |" in md
    assert "| `engine.methods.base` | 0 | 0 | 0 | 0 | 1 | – |" in md
