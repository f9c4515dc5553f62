"""Bad CLI values are exit 2 with one line and change nothing; failures never print a traceback (issue 12)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import main
from engine.data.catalog import CLASSIFICATION_METHODS, SEGMENTATION_METHODS
from tests.fixtures_images import gradient, write_png


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as stop:  # argparse refuses before any handler runs
        return int(stop.code)


def _project(tmp_path: Path) -> None:
    for i in range(4):
        write_png(tmp_path / "src" / ("a" if i % 2 else "b") / f"{i}.png", gradient(16, 16, scale=i + 1))
    assert main(["import", "--project", "p", "--task", "multiclass", "--source", str(tmp_path / "src")]) == 0


def _jobs(capsys) -> list:
    capsys.readouterr()
    assert main(["jobs", "--project", "p", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


BAD_TRAIN = [["--epochs", "-5"], ["--epochs", "0"], ["--epochs", "x"], ["--budget-minutes", "-1"],
             ["--budget-minutes", "0"], ["--budget-minutes", "nan"], ["--budget-minutes", "inf"], ["--nproc", "0"],
             ["--nproc", "-3"], ["--image-size", "0"], ["--image-size", "-64"], ["--image-size", "100000"],
             ["--seed", "-1"], ["--method", "secl"], ["--backbone", "unet_small"], ["--method", "nope"]]


@pytest.mark.parametrize("bad", BAD_TRAIN, ids=lambda b: " ".join(b))
def test_train_refuses_bad_values_and_queues_nothing(bad: list[str], tmp_path: Path, capsys) -> None:
    _project(tmp_path)
    capsys.readouterr()
    assert _exit_code(["train", "--project", "p", *bad]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip()
    assert _jobs(capsys) == []


@pytest.mark.parametrize("size", ["-5", "0", "1000000", "abc"])
def test_import_refuses_bad_image_size_and_creates_nothing(size: str, tmp_path: Path, capsys) -> None:
    write_png(tmp_path / "src" / "a" / "0.png", gradient(16, 16))
    assert _exit_code(["import", "--project", "q", "--task", "multiclass", "--source", str(tmp_path / "src"),
                       "--image-size", size]) == 2
    capsys.readouterr()
    assert _exit_code(["status", "--project", "q"]) == 2  # no such project


def test_analyze_unknown_checkpoint_or_no_model_is_a_usage_error(tmp_path: Path, capsys) -> None:
    _project(tmp_path)
    capsys.readouterr()
    assert _exit_code(["analyze", "--project", "p", "--checkpoint", "9999"]) == 2
    assert "no checkpoint 9999" in capsys.readouterr().err
    assert _exit_code(["analyze", "--project", "p"]) == 2
    assert "no model yet" in capsys.readouterr().err
    assert _jobs(capsys) == []


def test_bad_database_url_and_unreachable_server_are_one_line(capsys) -> None:
    assert _exit_code(["status", "--project", "p", "--db", "foo://bar"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error:") and "Traceback" not in err
    assert _exit_code(["status", "--project", "p", "--db", "postgresql://nobody@127.0.0.1:1/none"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot use the database" in err and "Traceback" not in err


def test_catalog_matches_the_method_registry() -> None:
    from engine.methods import METHODS

    assert set(METHODS.names()) == set(CLASSIFICATION_METHODS) | set(SEGMENTATION_METHODS)
    for name in METHODS.names():
        assert ("segmentation" in METHODS[name].tasks) == (name in SEGMENTATION_METHODS), name


def test_one_default_method_per_task_on_the_train_page_worker_and_catalog() -> None:
    """The benchmark's pick (engine.data.catalog.TASK_DEFAULTS) is the Train page's first choice and the
    worker's default; the page once listed SRC-MT first while the benchmark put it below supervised."""
    from app.views.train import CLASSIFICATION_METHODS as PAGE_CLASSIFICATION
    from app.views.train import SEGMENTATION_METHODS as PAGE_SEGMENTATION
    from engine.data.catalog import default_method
    from engine.jobs.train_job import build_config

    assert next(iter(PAGE_CLASSIFICATION.values())) == default_method("classification") == "s2mts2"
    assert next(iter(PAGE_SEGMENTATION.values())) == default_method("segmentation")
    assert build_config({}, "multiclass").method == default_method("classification")
    assert build_config({}, "segmentation").method == default_method("segmentation")
