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


def test_explore_uncertain_and_relations_pages(analyzed_project) -> None:
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

    at = _page_app("app.views.relations").run()
    assert not at.exception
    assert len(at.get("image")[0].proto.imgs) == 11          # the case and its 10 neighbours
    assert at.get("plotly_chart")
    assert any(s.value.startswith("Possible label errors") for s in at.subheader)
    at.run()   # a rerun reads the cached label-error frame again (a run once changed it in place and the next failed)
    assert not at.exception and any(s.value.startswith("Possible label errors") for s in at.subheader)
    from sqlalchemy import select

    from db.config import StoreConfig
    from db.models import RelationEdge
    from db.store import open_store

    case = int(at.number_input[0].value)
    db = open_store(StoreConfig.from_env())
    with db.sessions.begin() as s:   # a repeated target and a self edge (a graph from another tool) once crashed it
        edge = s.scalars(select(RelationEdge).where(RelationEdge.source_image_id == case)).first()
        s.add_all([RelationEdge(checkpoint_id=edge.checkpoint_id, source_image_id=case, target_image_id=t, rank=r,
                                similarity=0.5) for t, r in ((edge.target_image_id, 98), (case, 99))])
    db.dispose()
    at.run()
    assert not at.exception and len(at.get("image")[0].proto.imgs) == 11

    def label_errors() -> None:  # issue 13 item 10: the table had no thumbnails or click-through
        import pandas as pd

        from app.views.relations import _label_errors

        _label_errors(pd.DataFrame({"image_id": [1, 2], "labeled_neighbours": [5, 4], "disagreeing": [4, 3],
                                    "label": ["normal", "pneumonia"], "share": [0.8, 0.75]}), 2)

    from streamlit.testing.v1 import AppTest

    errors = AppTest.from_function(label_errors, default_timeout=30).run()
    assert not errors.exception and "preview" in errors.dataframe[0].value.columns

    at = _page_app("app.views.models").run()
    assert not at.exception
    labels = {m.label for m in at.metric}  # sensitivity/specificity name the positive class (issue 13 item 10)
    assert labels >= {"auc", "ece"} and {"sensitivity", "specificity"} <= {label.split(" ")[0] for label in labels}
    assert any(label.startswith("sensitivity") and "pneumonia" in label for label in labels)
    assert len(at.get("plotly_chart")) == 4                  # label efficiency, ROC, confusion, reliability
    # issue 16 §4: the page opens with the SSL-vs-shadow sentence and says which model is active and why
    assert any("Mean Teacher vs supervised on your" in m.value.replace("\\", "") and "95 % CI" in m.value
               for m in at.markdown)
    shown = [c.value.replace("\\", "") for c in at.caption]  # md() escapes markdown: compare the text
    assert any(c.startswith("Active: checkpoint") and "activate = best_on_val" in c for c in shown)
    efficiency = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert {t["name"] for t in efficiency["data"]} == {"semi-supervised", "supervised"}

    def flips() -> None:  # issue 13 item 10: flipped predictions showed class indices, no thumbnails
        from app.views.models import _flips_table

        _flips_table([(1, 0, 1), (2, 1, 0)], ["normal", "pneumonia"], 1, 2)

    flipped = AppTest.from_function(flips, default_timeout=30).run()
    table = flipped.dataframe[0].value
    assert not flipped.exception and "preview" in table.columns and table["#2"].tolist() == ["pneumonia", "normal"]

    at = _page_app("app.views.export").run()
    assert not at.exception
    buttons = {b.proto.label: b for b in at.get("download_button")}
    assert not buttons["labels.csv"].proto.disabled and not buttons["predictions.csv"].proto.disabled
    next(b for b in at.button if b.label.startswith("Export checkpoint")).click().run()
    assert not at.exception
    from sqlalchemy import select

    from db.config import StoreConfig
    from db.models import Job
    from db.store import open_store

    store = open_store(StoreConfig.from_env())
    with store.sessions.begin() as s:
        assert s.scalars(select(Job.kind).where(Job.status == "queued")).all() == ["export"]
    store.dispose()


def test_pages_without_model_explain_the_next_step(tmp_path) -> None:
    _import(*_chest_slice(tmp_path, 30, 10))
    for module, text in (("app.views.explore", "No model yet"), ("app.views.uncertain", "No ranking yet"),
                         ("app.views.relations", "No relation graph yet"),
                         ("app.views.models", "No checkpoints yet")):
        at = _page_app(module).run()
        assert not at.exception and any(text in info.value for info in at.info)


def test_models_page_names_the_positive_class_and_flipped_predictions_by_name() -> None:
    """Issue 13 item 10: sensitivity/specificity did not name the positive class; flips showed indices."""
    from app.views.models import class_names, headline_label

    assert headline_label("sensitivity", ["normal", "pneumonia"], "multiclass") == "sensitivity (pneumonia)"
    assert headline_label("f1", ["a", "b", "c"], "multiclass") == "f1 (macro over classes)"
    assert headline_label("specificity", ["a", "b"], "multilabel") == "specificity (macro over labels)"
    assert headline_label("auc", ["a", "b"], "multiclass") == "auc"
    assert class_names(1, ["normal", "pneumonia"]) == "pneumonia"
    assert class_names([0, 2], ["effusion", "fracture", "mass"]) == "effusion; mass" and class_names(None, []) == "–"


def test_checkpoint_tables_show_train_and_val_labels_apart() -> None:
    """Issue 13 item 10: "labels used" counted the val labels too."""
    from types import SimpleNamespace

    from app.views.train import label_split

    new = SimpleNamespace(metrics={"labels": {"train": 60, "val": 550}}, labels_used=610)
    old = SimpleNamespace(metrics={}, labels_used=610)  # registered before the split was recorded
    assert label_split(new) == {"train labels": 60, "val labels": 550}
    assert label_split(old) == {"train labels": 610, "val labels": None}


def test_gallery_order_puts_disagreements_first_and_stays_linear_in_the_selection() -> None:
    import time

    from app.views.explore import gallery_order

    assert gallery_order([1, 2, 3, 4], [3], limit=3) == [3, 1, 2]
    chosen = list(range(40_000))
    started = time.perf_counter()
    assert gallery_order(chosen, chosen[::2], limit=5) == [0, 2, 4, 6, 8]
    assert time.perf_counter() - started < 1.0   # quadratic took ~30 s at this size
