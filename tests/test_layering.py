"""Layering rules (CONTRACTS §1, docs/ARCHITECTURE.md): the app never loads torch; engine core never imports db/
or streamlit; engine stages import only lower layers; no import circles anywhere in engine/, app/, db/."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.import_graph import circles, import_graph

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


def _engine_imports(path: Path) -> set[str]:
    """Full dotted names of every engine module a file imports (absolute imports)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("engine"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("engine"):
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "app").rglob("*.py")), ids=lambda p: p.name)
def test_app_imports_only_the_data_package_of_the_engine(path: Path) -> None:
    """CONTRACTS §1: the app may import db/ and engine/data/ (and `engine` itself, which imports nothing)."""
    wrong = {m for m in _engine_imports(path) if m != "engine" and not m.startswith("engine.data")}
    assert not wrong, f"{path.relative_to(REPO_ROOT)} imports {sorted(wrong)}"


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


# --- the engine's stages and the circles rule (docs/ARCHITECTURE.md) -------------------------------------
# Each engine package (or top module) may import only packages of a lower layer; packages of one layer are
# siblings and never import each other (training and inference meet in scoring, below both).
LAYERS: dict[str, int] = {
    "engine.core": 0,
    "engine.data": 1, "engine.loaders": 1, "engine.models": 1, "engine.configs": 1,
    "engine.methods": 2,
    "engine.scoring": 3,
    "engine.training": 4, "engine.inference": 4, "engine.analysis": 4,
    "engine.jobs": 5,
    "engine.worker": 6,
    "engine.cli": 7,
    "engine.bench": 8, "engine.__main__": 8,  # benchmarks drive the CLI too (the reliability pass)
}


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "engine" and len(parts) > 1 else None


def layer_violations(graph: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    """'a -> b' for every import from an engine stage to one of the same or a higher layer."""
    found = []
    for module, targets in sorted(graph.items()):
        here = _stage(module)
        for target in sorted(targets):
            there = _stage(target)
            if here is None or there is None or here == there:
                continue
            if here not in layers or there not in layers:
                found.append(f"{module} -> {target}: stage not in LAYERS (add it, and to docs/ARCHITECTURE.md)")
            elif layers[there] >= layers[here]:
                found.append(f"{module} -> {target}: layer {layers[here]} imports layer {layers[there]}")
    return found


def _project_graph() -> dict[str, set[str]]:
    return import_graph(REPO_ROOT, ["engine", "app", "db"])


def test_no_import_circles_between_modules() -> None:
    assert circles(_project_graph()) == []


def test_engine_stages_import_only_lower_layers() -> None:
    assert layer_violations(_project_graph(), LAYERS) == []


def test_every_engine_stage_is_layered_and_documented() -> None:
    on_disk = {f"engine.{p.name}" for p in (REPO_ROOT / "engine").iterdir()
               if (p / "__init__.py").exists() or (p.suffix == ".py" and p.name != "__init__.py")}
    on_disk = {name.removesuffix(".py") for name in on_disk}
    assert on_disk == set(LAYERS)
    architecture = (REPO_ROOT / "docs" / "ARCHITECTURE.md").read_text()
    tree = architecture.split("```")[1]  # the first fenced block is the tree
    for stage in LAYERS:
        leaf = stage.split(".")[1]
        assert (f"{leaf}/" in tree) or (f"{leaf}.py" in tree), f"{stage} missing from the ARCHITECTURE.md tree"
    init = ast.parse((REPO_ROOT / "engine" / "__init__.py").read_text())
    assert not [n for n in ast.walk(init) if isinstance(n, (ast.Import, ast.ImportFrom))]  # CONTRACTS §1


def test_a_deliberate_circle_fails(tmp_path: Path) -> None:
    """The checker itself: a lazy import back from b to a is a circle, and so is a three-module ring."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import thing\n")
    (pkg / "b.py").write_text("def thing():\n    from pkg import a  # lazy, still an arrow back\n    return a\n")
    (pkg / "c.py").write_text("import pkg.d\n")
    (pkg / "d.py").write_text("from . import e\n")
    (pkg / "e.py").write_text("from .c import x\n")
    (pkg / "f.py").write_text("from pkg import a\n")  # only points in: no circle
    assert circles(import_graph(tmp_path, ["pkg"])) == [["pkg.a", "pkg.b"], ["pkg.c", "pkg.d", "pkg.e"]]


def test_a_deliberate_upward_import_fails() -> None:
    """Training reaching into inference (a sibling) and scoring reaching up into training are both refused."""
    graph = {"engine.training.loop": {"engine.inference.infer", "engine.scoring.predict"},
             "engine.scoring.predict": {"engine.training.loop"}, "engine.inference.infer": set()}
    assert layer_violations(graph, LAYERS) == [
        "engine.scoring.predict -> engine.training.loop: layer 3 imports layer 4",
        "engine.training.loop -> engine.inference.infer: layer 4 imports layer 4",
    ]


def test_no_module_over_300_lines() -> None:
    long = {p.relative_to(REPO_ROOT).as_posix(): n for folder in ("engine", "app", "db")
            for p in (REPO_ROOT / folder).rglob("*.py") if (n := len(p.read_text().splitlines())) > 300}
    assert long == {}
