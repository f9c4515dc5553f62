"""Every app page under streamlit's AppTest on a temporary store: empty state and a populated project."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from engine.cli import main
from tests.conftest import REPO_ROOT, shared_file


def _app() -> AppTest:
    return AppTest.from_file(str(REPO_ROOT / "app" / "main.py"), default_timeout=30)


def test_projects_page_empty_state_explains_how_to_start() -> None:
    at = _app().run()
    assert not at.exception
    assert any("No project yet" in info.value for info in at.info)
    assert any("not for clinical diagnosis" in c.value for c in at.sidebar.caption)


def test_projects_page_shows_counts_of_an_imported_project() -> None:
    assert main(["import", "--project", "chest", "--task", "multiclass", "--source",
                 str(shared_file("chest_xray_pneumonia_64/val.npz"))]) == 0
    at = _app().run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["images"] == "550" and metrics["labeled"] == "550" and metrics["unlabeled"] == "0"
