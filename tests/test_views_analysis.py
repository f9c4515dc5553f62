"""Explore and Uncertain pages on a project with a trained, analyzed checkpoint (real chest X-rays)."""
from __future__ import annotations

import json

import pytest

from engine.cli import main
from tests.test_train_job import _chest_slice, _import
from tests.test_views import _page_app


@pytest.fixture
def analyzed_project(tmp_path, capsys) -> dict:
    _import(*_chest_slice(tmp_path, 160, 40))
    assert main(["train", "--project", "cx", "--method", "mean_teacher", "--epochs", "1", "--wait"]) == 0
    assert main(["analyze", "--project", "cx", "--wait"]) == 0
    capsys.readouterr()
    main(["status", "--project", "cx", "--json"])
    return json.loads(capsys.readouterr().out)


def _n_points(trace: dict) -> int:
    """Plotly 6 ships arrays as base64 typed arrays ({'dtype', 'bdata'}) in the figure JSON."""
    import base64

    import numpy as np

    x = trace["x"]
    if isinstance(x, dict):
        return len(base64.b64decode(x["bdata"])) // np.dtype(x["dtype"]).itemsize
    return len(x)


def test_explore_and_uncertain_pages(analyzed_project) -> None:
    at = _page_app("app.views.explore").run()
    assert not at.exception
    chart = at.get("plotly_chart")[0]
    figure = json.loads(chart.proto.spec)
    assert figure["data"][0]["type"] == "scattergl"
    assert sum(_n_points(trace) for trace in figure["data"]) == analyzed_project["images"]

    at = _page_app("app.views.uncertain").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 20 and table["rank"].tolist() == sorted(table["rank"].tolist())
    assert {"entropy", "margin", "least_confidence", "disagreement", "preview"} <= set(table.columns)
    first = int(table["image_id"].iloc[0])
    next(b for b in at.button if b.label.startswith("Label these")).click().run()
    assert at.session_state["label.current_image_id"] == first
    assert at.session_state["label.pinned_queue"] == [int(i) for i in table["image_id"].iloc[1:]]


def test_pages_without_model_explain_the_next_step(tmp_path) -> None:
    _import(*_chest_slice(tmp_path, 30, 10))
    for module, text in (("app.views.explore", "No model yet"), ("app.views.uncertain", "No ranking yet")):
        at = _page_app(module).run()
        assert not at.exception and any(text in info.value for info in at.info)
