"""Layering rules (CONTRACTS §1): the app never loads torch; engine core never imports db/ or streamlit."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# Modules allowed to bridge engine and db/ (CONTRACTS §1).
BRIDGES = ("engine/cli", "engine/__main__.py", "engine/data", "engine/jobs", "engine/worker.py", "engine/bench")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _engine_core_files() -> list[Path]:
    files = sorted((REPO_ROOT / "engine").rglob("*.py"))
    return [f for f in files if not f.relative_to(REPO_ROOT).as_posix().startswith(BRIDGES)]


@pytest.mark.parametrize("path", _engine_core_files(), ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_engine_core_does_not_import_db_or_streamlit(path: Path) -> None:
    assert not _imports(path) & {"db", "streamlit", "app"}


def test_engine_data_and_db_are_torch_free() -> None:
    for folder in ("engine/data", "db"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            assert not _imports(path) & {"torch", "torchvision", "engine.models"}, path


def test_app_and_data_pipeline_never_load_torch() -> None:
    """A fresh interpreter imports every app module and the import pipeline; torch must stay unloaded."""
    modules = ["engine", "engine.data.importer", "engine.data.cache", "db.status", "db.labels"]
    modules += [".".join(p.relative_to(REPO_ROOT).with_suffix("").parts)
                for p in sorted((REPO_ROOT / "app").rglob("*.py")) if p.name != "main.py"]
    code = ("import sys, importlib\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "assert 'torch' not in sys.modules, [m for m in sys.modules if m.startswith('torch')][:5]\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
