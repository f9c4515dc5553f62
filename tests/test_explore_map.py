"""Explore map payload (compact typed arrays, hover without per-point strings, first-paint cap) and the
page around it: cached frame invalidated by new labels, the cap notice + "show all", selection -> bulk label."""
from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import plotly.io as pio
import pytest

from app.widgets.umap_map import GRID, MAX_TRACES, build_map, first_paint_rows, grid_positions, selected_ids


def _frame(n: int, seed: int = 0, labeled: int = 0) -> pd.DataFrame:
    """A mapped frame shaped like app.queries.image_frame(mapped_only=True)."""
    rng = np.random.default_rng(seed)
    label = np.array(["unlabeled"] * n, dtype=object)
    label[:labeled] = rng.choice(["normal", "pneumonia"], labeled)
    return pd.DataFrame({
        "image_id": np.arange(1, n + 1), "split": rng.choice(["train", "val", "test"], n),
        "status": np.where(label == "unlabeled", "unlabeled", "labeled"), "label": label,
        "x": rng.normal(size=n) * 7, "y": rng.normal(size=n) * 3,
        "predicted": rng.choice(["normal", "pneumonia"], n), "entropy": rng.random(n),
        "disagreement": rng.random(n), "acquisition_rank": rng.permutation(n).astype(float)})


def _decode(spec) -> np.ndarray:
    if isinstance(spec, dict):      # plotly ships numpy arrays as base64 typed arrays
        values = np.frombuffer(base64.b64decode(spec["bdata"]), dtype=np.dtype(spec["dtype"]))
        return values.reshape([int(s) for s in str(spec["shape"]).split(",")]) if "shape" in spec else values
    return np.asarray(spec)


def _traces(figure) -> list[dict]:
    return json.loads(pio.to_json(figure, validate=False))["data"]


def test_50k_point_payload_is_compact_typed_arrays_without_per_point_strings() -> None:
    frame = _frame(50_000, labeled=400)
    drawn = build_map(frame, "current label")
    spec = pio.to_json(drawn.figure, validate=False)
    assert len(spec) < 1_000_000                      # was 1.58 MB with float32 x/y + 3 customdata columns
    traces = json.loads(spec)["data"]
    assert {t["type"] for t in traces} == {"scattergl"}
    for trace in traces:
        assert trace["x"]["dtype"] == "u2" and trace["y"]["dtype"] == "u2"
        assert trace["customdata"]["dtype"] == "f4" and trace["customdata"]["shape"].replace(" ", "").endswith(",2")
        assert "text" not in trace and "hovertext" not in trace
        assert "%{customdata[0]}" in trace["hovertemplate"] and "%{customdata[1]:.3f}" in trace["hovertemplate"]
    ids = np.concatenate([_decode(t["customdata"])[:, 0] for t in traces]).astype(int)
    assert sorted(ids.tolist()) == frame["image_id"].tolist()      # every point once, ids exact
    assert drawn.shown == drawn.total == 50_000


def test_unlabeled_underneath_one_legend_entry_per_colour_and_literal_hover() -> None:
    traces = _traces(build_map(_frame(500, labeled=60), "split").figure)
    assert {t["name"] for t in traces} == {"train", "val", "test"}
    assert sum(t["showlegend"] for t in traces) == 3              # split by label x prediction, legend once
    assert {t["legendgroup"] for t in traces} == {"train", "val", "test"}
    assert any("label normal<br>model pneumonia" in t["hovertemplate"] for t in traces)
    by_label = _traces(build_map(_frame(500, labeled=60), "current label").figure)
    assert by_label[0]["name"] == "unlabeled"                     # drawn first = underneath
    assert all("<br>label " not in t["hovertemplate"] for t in by_label)   # the trace name says it


def test_continuous_colour_shares_one_colour_axis() -> None:
    figure = build_map(_frame(300), "uncertainty (entropy)").figure
    traces = _traces(figure)
    assert all(t["marker"]["coloraxis"] == "coloraxis" for t in traces)
    assert sum(len(_decode(t["marker"]["color"])) for t in traces) == 300
    assert figure.layout.coloraxis.colorscale is not None
    assert "%{marker.color:.3f}" in traces[0]["hovertemplate"]


def test_many_label_prediction_groups_fall_back_to_one_trace_per_colour() -> None:
    frame = _frame(2_000, labeled=2_000)
    frame["label"] = [f"set{i % (MAX_TRACES + 5)}" for i in range(len(frame))]   # multilabel-like combos
    traces = _traces(build_map(frame, "split").figure)
    assert len(traces) == 3 and all("<br>model" not in t["hovertemplate"] for t in traces)


def test_first_paint_keeps_every_decided_case_the_best_ranked_and_a_fixed_sample() -> None:
    frame = _frame(10_000, labeled=300)
    frame.loc[frame.index[300:310], "status"] = "uncertain"
    rows = first_paint_rows(frame, 2_000)
    assert len(rows) == 2_000 and np.all(np.diff(rows) > 0)
    assert set(range(310)) <= set(rows.tolist())                  # labeled + unsure first
    unlabeled = frame.iloc[310:]
    best = unlabeled.nsmallest(845, "acquisition_rank").index      # half of the 1,690 left
    assert set(best) <= set(rows.tolist())
    assert np.array_equal(rows, first_paint_rows(frame, 2_000))    # deterministic across reruns
    assert len(first_paint_rows(frame, 0)) == len(first_paint_rows(frame, 20_000)) == 10_000


def test_capped_map_draws_the_same_positions_as_the_full_map() -> None:
    frame = _frame(5_000, labeled=100)
    full, capped = build_map(frame, "current label"), build_map(frame, "current label", limit=1_000)
    assert (capped.shown, capped.total, full.shown) == (1_000, 5_000, 5_000)
    where = {}
    for trace in _traces(full.figure):
        for i, x, y in zip(_decode(trace["customdata"])[:, 0], _decode(trace["x"]), _decode(trace["y"])):
            where[int(i)] = (int(x), int(y))
    points = 0
    for trace in _traces(capped.figure):
        for i, x, y in zip(_decode(trace["customdata"])[:, 0], _decode(trace["x"]), _decode(trace["y"])):
            assert where[int(i)] == (int(x), int(y))
            points += 1
    assert points == 1_000
    assert capped.figure.layout.xaxis.range == full.figure.layout.xaxis.range


def test_grid_positions_span_uint16_and_survive_a_constant_column() -> None:
    grid = grid_positions(np.array([-3.0, 0.0, 5.0]))
    assert grid.dtype == np.uint16 and grid.tolist() == [0, 24576, GRID]
    assert grid_positions(np.full(4, 2.5)).tolist() == [0, 0, 0, 0]


def test_selected_ids_reads_customdata_of_clicks_boxes_and_lassos() -> None:
    points = [{"customdata": {"0": 17.0, "1": 0.4}, "point_index": 3},   # what the browser sends
              {"customdata": [5, 0.1]}, {"customdata": 9.0}, {"customdata": [17.0, 0.4]}, {"point_index": 1}]
    assert selected_ids(points) == [17, 5, 9]


# --- the page on a real store (100s of images, analysis rows written directly: no training needed) ---

@pytest.fixture
def mapped_project(_isolated_home):
    """bench-style project: 300 images, 250 on the map, all unlabeled; returns (project id, checkpoint id)."""
    from engine.bench.app_speed import populate

    populate(_isolated_home, 300, 250)
    return 1, 1


def _label(image_ids: list[int], value: int) -> None:
    from app.resources import get_store
    from db.labels import add_label
    from db.models import Image
    from db.projects import get_or_create_annotator

    with get_store().sessions.begin() as session:
        annotator = get_or_create_annotator(session, "dr_t")
        for image_id in image_ids:
            add_label(session, session.get(Image, image_id), annotator, value)


def test_cached_frame_follows_new_labels(mapped_project) -> None:
    from app.queries import frame_version, image_frame

    project_id, checkpoint_id = mapped_project
    before = frame_version(project_id, checkpoint_id)
    mapped = image_frame(project_id, checkpoint_id, mapped_only=True)
    assert len(mapped) == 250 and len(image_frame(project_id, checkpoint_id)) == 300
    assert image_frame(project_id, checkpoint_id, mapped_only=True) is mapped      # cached between reruns
    assert set(mapped["label"]) == {"unlabeled"} and set(mapped["predicted"]) <= {"normal", "pneumonia"}
    _label([1, 2], 1)
    assert frame_version(project_id, checkpoint_id) != before
    fresh = image_frame(project_id, checkpoint_id, mapped_only=True).set_index("image_id")
    assert fresh.loc[[1, 2], "label"].tolist() == ["pneumonia", "pneumonia"]
    assert fresh.loc[[1, 2], "status"].tolist() == ["labeled", "labeled"]
    assert fresh.loc[[1, 2], "label_value"].tolist() == [1, 1]


def test_case_rows_agree_with_the_project_frame_and_leave_out_other_ids(mapped_project) -> None:
    """Relations reads its dozen cases with case_rows instead of the whole frame: the same labels and
    predictions, "unlabeled" where no label, and an id outside the project is simply absent."""
    from app.queries import case_rows, first_image_id, image_frame

    project_id, checkpoint_id = mapped_project
    _label([3], 0)
    rows = case_rows(project_id, checkpoint_id, [3, 4, 299, 10_000])
    full = image_frame(project_id, checkpoint_id).set_index("image_id")
    assert sorted(rows.index) == [3, 4, 299]
    for image_id in (3, 4, 299):
        assert rows.loc[image_id, "label"] == full.loc[image_id, "label"]
        assert rows.loc[image_id, "predicted"] == full.loc[image_id, "predicted"]
    assert rows.loc[3, "label"] == "normal" and rows.loc[4, "label"] == "unlabeled"
    assert first_image_id(project_id) == 1 and first_image_id(project_id + 1) is None


def test_explore_caps_first_paint_with_a_notice_and_show_all_draws_every_point(mapped_project, monkeypatch) -> None:
    from app.views import explore
    from tests.test_views import _page_app

    monkeypatch.setattr(explore, "FIRST_PAINT", 100)
    _label([3], 0)
    at = _page_app("app.views.explore").run()
    assert not at.exception

    def points() -> int:
        return sum(len(_decode(t["x"])) for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"])

    assert points() == 100
    assert any("Showing 100 of 250 points" in w.value for w in at.warning)
    at.toggle(key=explore.SHOW_ALL_KEY).set_value(True).run()
    assert not at.exception and points() == 250 and not at.warning


def test_selection_lists_model_disagreements_first_and_bulk_labels_the_unlabeled(mapped_project) -> None:
    from streamlit.testing.v1 import AppTest

    def page() -> None:
        from app import state
        from app.queries import current_project, image_frame
        from app.views.explore import _selection

        state.put(state.PROJECT, 1)
        state.put(state.ANNOTATOR, "dr_bulk")
        frame = image_frame(1, 1, mapped_only=True)
        _selection(frame, current_project(), [10, 11, 12, 13])

    from app.queries import image_frame

    frame = image_frame(1, 1, mapped_only=True).set_index("image_id")
    _label([13], 1)
    at = AppTest.from_function(page, default_timeout=30).run()
    assert not at.exception
    assert at.subheader[0].value == "4 selected"
    disagree = [i for i in (10, 11, 12) if frame.loc[i, "predicted"] != "normal"]
    assert disagree                                                 # populate's seed: the model says pneumonia
    assert f"disagrees with 'normal' on {len(disagree)}" in at.warning[0].value
    assert at.get("image")[0].proto.imgs[0].caption.startswith(str(disagree[0]))   # listed first
    next(b for b in at.button if b.label.startswith("Label 3 unlabeled as 'normal'")).click().run()
    assert not at.exception
    labeled = image_frame(1, 1, mapped_only=True).set_index("image_id")
    assert labeled.loc[[10, 11, 12, 13], "label"].tolist() == ["normal", "normal", "normal", "pneumonia"]


def test_selection_with_no_unlabeled_case_does_not_crash(mapped_project) -> None:
    """Issue 13 item 4: re-selecting an area just bulk-labeled raised KeyError: 'image_id'."""
    from streamlit.testing.v1 import AppTest

    def page() -> None:
        from app import state
        from app.queries import current_project, image_frame
        from app.views.explore import _selection

        state.put(state.PROJECT, 1)
        state.put(state.ANNOTATOR, "dr_bulk")
        _selection(image_frame(1, 1, mapped_only=True), current_project(), [20, 21, 22])

    _label([20, 21, 22], 0)
    at = AppTest.from_function(page, default_timeout=30).run()
    assert not at.exception
    assert at.subheader[0].value == "3 selected" and not at.warning
    assert next(b for b in at.button if b.label.startswith("Label 0 unlabeled")).disabled


def test_a_class_has_one_colour_on_every_page() -> None:
    """Issue 13 item 10: class colours differed between Explore, Relations and Projects."""
    import pandas as pd

    from app.palette import class_colour, colour_map
    from app.widgets.charts import relation_graph
    from app.widgets.umap_map import build_map

    classes = ["normal", "pneumonia"]
    frame = pd.DataFrame({"image_id": [1, 2, 3], "x": [0.0, 1.0, 2.0], "y": [0.0, 1.0, 0.5],
                          "status": ["labeled", "labeled", "unlabeled"], "label": ["pneumonia", "normal", "unlabeled"],
                          "predicted": ["pneumonia", "normal", "normal"], "entropy": [0.1, 0.2, 0.3],
                          "acquisition_rank": [None, None, 1], "disagreement": [0.0, 0.0, 0.1],
                          "split": ["train"] * 3, "label_value": [1, 0, None]})
    figure = build_map(frame, "current label", classes=classes).figure
    map_colours = {t.name: t.marker.color for t in figure.data if t.name in classes}
    nodes = pd.DataFrame({"image_id": [1, 2], "label": ["pneumonia", "normal"], "x": [0.0, 1.0], "y": [0.0, 1.0]})
    edges = pd.DataFrame({"source": [1], "target": [2], "similarity": [0.9]})
    graph_colours = {t.name: t.marker.color for t in relation_graph(1, nodes, edges, classes).data if t.name}
    assert map_colours == graph_colours == {"normal": class_colour(0), "pneumonia": class_colour(1)}
    assert colour_map(classes, ["pneumonia", "val"])["pneumonia"] == class_colour(1)
