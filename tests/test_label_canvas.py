"""The Label page's mask canvas under AppTest: controls on a segmentation project, and strokes (the PNG the
browser sends) saved as a new human label whose mask PNG round-trips exactly at the image's size."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from app import state
from app.widgets import mask_paint
from db.config import StoreConfig
from db.models import Annotator, Image, Label
from db.store import open_store
from engine.cli import main
from engine.data.io import save_mask
from tests.conftest import REPO_ROOT
from tests.test_browser import CHROMIUM, _artifacts, _free_port, new_page
from tests.test_views import _page_app

SIZE = 32
PROPOSAL = np.zeros((SIZE, SIZE), np.uint8)
PROPOSAL[8:20, 10:24] = 1


@pytest.fixture
def seg_project(tmp_path) -> int:
    """A 2-image segmentation project whose first image has a model proposal; returns that image's id."""
    images = np.random.default_rng(0).integers(0, 255, (2, SIZE, SIZE, 3), dtype=np.uint8)
    np.savez(tmp_path / "train.npz", images=images, labels=np.zeros(2, np.uint8))
    assert main(["import", "--project", "seg", "--task", "segmentation", "--classes", "background,lesion",
                 "--source", str(tmp_path / "train.npz")]) == 0
    store = open_store(StoreConfig.from_env())
    with store.sessions.begin() as s:
        image_id = s.scalars(select(Image.id).order_by(Image.id)).first()
        path = save_mask(PROPOSAL, store.config.masks_dir / "p1" / f"{image_id}-model1")
        s.add(Label(image_id=image_id, kind="class", source="model", checkpoint_id=None, comment="model proposal",
                    mask_path=path.relative_to(store.config.home).as_posix()))
    store.dispose()
    return image_id


def _canvas_args(at: AppTest) -> dict:
    """The arguments the page gave the canvas component (stroke colour, width, canvas size ...)."""
    def walk(node):
        for child in getattr(node, "children", {}).values():
            if type(child).__name__ == "UnknownElement" and child.type == "bidi_component":
                yield child
            yield from walk(child)

    canvases = list(walk(at.main))
    assert len(canvases) == 1 and canvases[0].proto.component_name.startswith("streamlit-drawable-canvas")
    return json.loads(canvases[0].proto.json)


def _send_strokes(at: AppTest, rgba: np.ndarray, n_strokes: int) -> None:
    """What the browser reports after strokes: Fabric objects plus the canvas as a PNG data URL."""
    at.session_state[at.session_state[state.CANVAS_KEY]] = {
        "drawing": {"raw": {"objects": [{"type": "Path"}] * n_strokes}, "data": mask_paint.encode_data_url(rgba)},
        "backgroundFit": None}


def _paint(rgba: np.ndarray, rows: slice, cols: slice, value: int) -> None:
    rgba[rows, cols, :3] = mask_paint.ERASE_RGB if value == mask_paint.ERASE else mask_paint.CLASS_RGB[value]
    rgba[rows, cols, 3] = int(255 * mask_paint.STROKE_OPACITY)


def test_segmentation_label_page_shows_the_canvas_and_its_controls(seg_project) -> None:
    at = _page_app("app.views.label").run()
    assert not at.exception
    assert at.radio(key=state.start_key(seg_project)).options == ["model proposal", "empty"]
    labels = [b.label for b in at.button]
    for wanted in ("Draw (D)", "Erase (E)", "Save mask (Enter)", "Clear strokes", "Accept proposal as is"):
        assert wanted in labels
    assert {s.label for s in at.slider} >= {"brush size (image pixels)", "mask opacity"}
    args = _canvas_args(at)
    assert (args["canvasWidth"], args["canvasHeight"], args["drawingMode"]) == (600, 600, "freedraw")
    assert args["strokeColor"] == mask_paint.stroke_colour(1) and args["backgroundImageURL"].startswith("data:image/png")
    assert any("starting from model proposal" in c.value for c in at.caption)

    next(b for b in at.button if b.label == "Erase (E)").click().run()
    assert _canvas_args(at)["strokeColor"] == mask_paint.stroke_colour(mask_paint.ERASE)
    next(s for s in at.slider if s.label.startswith("brush")).set_value(4).run()   # 4 px at 600/32 canvas px each
    assert _canvas_args(at)["strokeWidth"] == 75
    key = at.session_state[state.CANVAS_KEY]
    next(b for b in at.button if b.label == "Clear strokes").click().run()
    assert at.session_state[state.CANVAS_KEY] != key       # a new canvas: unsaved strokes are dropped
    at.radio(key=state.start_key(seg_project)).set_value("empty").run()
    assert not at.exception and ".empty." in at.session_state[state.CANVAS_KEY]


def test_strokes_save_a_new_human_label_whose_png_round_trips_exactly(seg_project) -> None:
    at = _page_app("app.views.label").run()
    at.select_slider[0].set_value(256).run()              # zoom: 8 canvas px per image pixel
    assert _canvas_args(at)["canvasWidth"] == 256
    rgba = np.zeros((256, 256, 4), np.uint8)
    _paint(rgba, slice(0, 32), slice(0, 48), 1)            # draw image rows 0..3, cols 0..5
    _paint(rgba, slice(64, 160), slice(80, 128), mask_paint.ERASE)   # erase rows 8..19, cols 10..15 of the proposal
    _send_strokes(at, rgba, n_strokes=2)
    next(t for t in at.text_input if t.label == "comment (optional)").input("border unclear")
    next(b for b in at.button if b.label == "Save mask (Enter)").click().run()
    assert not at.exception

    expected = PROPOSAL.copy()
    expected[0:4, 0:6] = 1
    expected[8:20, 10:16] = 0
    store = open_store(StoreConfig.from_env())
    with store.sessions.begin() as s:
        rows = s.scalars(select(Label).where(Label.image_id == seg_project).order_by(Label.id)).all()
        assert [r.source for r in rows] == ["model", "human"]            # the proposal stays in history
        human = rows[-1]
        assert s.get(Annotator, human.annotator_id).name == "dr_r"
        assert human.comment == "border unclear (drawn on canvas from model proposal (checkpoint None))"
        assert human.mask_path != rows[0].mask_path and s.get(Image, seg_project).current_label_id == human.id
        stored = cv2.imread(str(store.config.home / human.mask_path), cv2.IMREAD_UNCHANGED)
    store.dispose()
    assert stored.dtype == np.uint8 and stored.shape == (SIZE, SIZE)
    assert np.array_equal(stored, expected)
    assert at.session_state[state.CURRENT_IMAGE] != seg_project         # the next case is up


def test_save_without_strokes_stores_the_starting_mask_and_empty_start_stores_zeros(seg_project) -> None:
    at = _page_app("app.views.label").run()
    next(b for b in at.button if b.label == "Save mask (Enter)").click().run()      # = accept the proposal
    other = at.session_state[state.CURRENT_IMAGE]
    assert other != seg_project and at.radio[0].options == ["empty"]
    rgba = np.zeros((600, 600, 4), np.uint8)
    _paint(rgba, slice(0, 300), slice(0, 600), 1)          # the top half at the fit width (18.75 px per pixel)
    _send_strokes(at, rgba, n_strokes=1)
    next(b for b in at.button if b.label == "Save mask (Enter)").click().run()
    assert not at.exception
    store = open_store(StoreConfig.from_env())
    with store.sessions.begin() as s:
        first = s.scalars(select(Label).where(Label.image_id == seg_project, Label.source == "human")).one()
        second = s.scalars(select(Label).where(Label.image_id == other, Label.source == "human")).one()
        assert first.comment == "saved model proposal (checkpoint None)"
        masks = [cv2.imread(str(store.config.home / r.mask_path), cv2.IMREAD_UNCHANGED) for r in (first, second)]
    store.dispose()
    assert np.array_equal(masks[0], PROPOSAL)
    expected = np.zeros((SIZE, SIZE), np.uint8)
    expected[:16] = 1
    assert np.array_equal(masks[1], expected)


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (CI installs Debian's)")
def test_a_stroke_drawn_in_a_real_browser_saves_as_a_mask(tmp_path, _isolated_home) -> None:
    """Chromium draws one horizontal stroke through image row 16 of an empty 32x32 case and saves it."""
    from playwright.sync_api import expect, sync_playwright

    images = np.random.default_rng(1).integers(0, 255, (2, SIZE, SIZE), dtype=np.uint8)
    np.savez(tmp_path / "train.npz", images=images, labels=np.zeros(2, np.uint8))
    assert main(["import", "--project", "seg", "--task", "segmentation", "--source", str(tmp_path / "train.npz")]) == 0
    port = _free_port()
    env = {**os.environ, "MEDSSL_HOME": str(_isolated_home), "MEDSSL_USER": "dr_canvas", "MEDSSL_AUTOSTART_WORKER": "0"}
    with open(tmp_path / "streamlit.log", "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port),
                                   "--server.headless", "true"], cwd=REPO_ROOT, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            _draw_and_save(f"http://localhost:{port}", expect, sync_playwright)
        finally:
            server.terminate()
            server.wait(20)
    store = open_store(StoreConfig.from_env(home=_isolated_home))
    with store.sessions.begin() as s:
        human = s.scalars(select(Label).where(Label.source == "human")).one()
        assert s.get(Annotator, human.annotator_id).name == "dr_canvas"
        mask = cv2.imread(str(store.config.home / human.mask_path), cv2.IMREAD_UNCHANGED)
    store.dispose()
    assert mask.shape == (SIZE, SIZE) and set(np.unique(mask)) == {0, 1}
    assert mask[16, 8:24].all() and not mask[:15].any() and not mask[18:].any()


def _draw_and_save(url: str, expect, sync_playwright) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and socket.socket().connect_ex(("127.0.0.1", int(url.rsplit(":", 1)[1]))):
        time.sleep(0.3)
    with sync_playwright() as p:
        browser, page = new_page(p)
        page.goto(f"{url}/label")
        # the first render under a loaded CI machine can take longer than expect's 5 s default
        expect(page.get_by_role("button", name="Save mask (Enter)")).to_be_visible(timeout=30_000)
        canvas = page.locator("canvas.upper-canvas").or_(page.locator("canvas")).last
        expect(canvas).to_be_visible()
        page.wait_for_timeout(1000)
        box = canvas.bounding_box()
        scale = box["width"] / SIZE                           # canvas px per image pixel
        y = box["y"] + 16.5 * scale                            # the centre of image row 16
        page.mouse.move(box["x"] + 4 * scale, y)
        page.mouse.down()
        for step in range(1, 25):
            page.mouse.move(box["x"] + (4 + step) * scale, y)
        page.mouse.up()
        expect(page.get_by_text("1 unsaved stroke")).to_be_visible()
        page.screenshot(path=str(_artifacts() / "label-canvas.png"))
        page.get_by_role("button", name="Save mask (Enter)").click()
        expect(page.get_by_text("draw on the image")).to_be_visible()
        expect(page.get_by_text("image 2 ·", exact=False)).to_be_visible()
        browser.close()


def test_draw_or_erase_mode_is_always_shown_in_words(seg_project) -> None:
    """Issue 13 item 7: on the mask page the draw/erase mode must always be visible."""
    at = _page_app("app.views.label").run()
    assert any("Mode: **drawing**" in c.value for c in at.caption)
    next(b for b in at.button if b.label == "Erase (E)").click().run()
    assert any("Mode: **erasing**" in c.value for c in at.caption)
