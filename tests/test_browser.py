"""Real browser end to end: Playwright drives Debian's Chromium against `streamlit run app/main.py`.

Journey: create a project, import a small real chest X-ray set through the UI (train pool unlabeled, val
labeled), label 5 cases with the number keys, start a training job, let the worker the app started
finish it (and its analysis), open Explore and see the map, click a point (preview -> Open in Label)
and box-select many (gallery); then the database holds the 5 labels with the
annotator. Screenshots of every page at 1440x900 go to $MEDSSL_ARTIFACTS.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from db.config import StoreConfig
from db.models import Annotator, Label
from db.store import open_store
from tests.conftest import REPO_ROOT, shared_file

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (CI installs Debian's)")]
ANNOTATOR = "dr_browser"
# The page's own chart, not the empty chart app/widgets/prefetch.py draws in the sidebar on a session's first run
# (matching that one made the Explore wait stop before the map existed: CI, stop 21).
MAIN_CHART = "[data-testid='stMain'] .js-plotly-plot"
MAP_DRAWN = ("() => { const g = document.querySelector(\"" + MAIN_CHART + "\");"
             " return !!(g && g._fullData && g._fullData.length); }")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _small_real_set(folder: Path) -> tuple[Path, Path]:
    """40 unlabeled train + 9 labeled val images (< 50 in all, so the map uses the fast PCA path)."""
    folder.mkdir()
    source = np.load(shared_file("chest_xray_pneumonia_64/val.npz"))
    pick = np.random.default_rng(0).permutation(
        np.r_[np.flatnonzero(source["labels"] == 0)[:22], np.flatnonzero(source["labels"] == 1)[:27]])
    train, val = pick[::2][:40], pick[1::2][:9]
    np.savez(folder / "train.npz", images=source["images"][train], labels=source["labels"][train])
    np.savez(folder / "val.npz", images=source["images"][val], labels=source["labels"][val])
    return folder / "train.npz", folder / "val.npz"


@pytest.fixture
def app_server(tmp_path, _isolated_home):
    port = _free_port()
    env = {**os.environ, "MEDSSL_HOME": str(_isolated_home), "MEDSSL_USER": ANNOTATOR,
           "MEDSSL_AUTOSTART_WORKER": "1", "MEDSSL_WARM_UMAP": "0",
           "MEDSSL_IMPORT_ROOTS": str(tmp_path)}  # the journey imports a server folder under tmp_path
    server, log = launch_app(env, port, tmp_path / "streamlit.log")
    yield f"http://localhost:{port}"
    server.terminate()
    server.wait(20)
    subprocess.run(["pkill", "-f", f"MEDSSL_HOME={_isolated_home}"], check=False)
    _stop_workers(_isolated_home)
    log.close()


def launch_app(env: dict[str, str], port: int, log_path: Path):
    """`streamlit run app/main.py` from the repo root (its .streamlit/config.toml: loopback), up within 60 s."""
    log = open(log_path, "wb")  # noqa: SIM115 -- the caller closes it
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port),
                               "--server.headless", "true"], cwd=REPO_ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.3)
    return server, log


def _stop_workers(home: Path) -> None:
    """The app's worker runs in its own session; stop it so no process outlives the test."""
    import signal

    from db.models import Worker

    store = open_store(StoreConfig.from_env(home=home))
    with store.sessions.begin() as s:
        pids = [w.pid for w in s.scalars(select(Worker).where(Worker.stopped_at.is_(None)))]
    store.dispose()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def new_page(playwright):
    """Debian's Chromium at 1440x900 with 30 s timeouts: (browser, page); the caller closes the browser."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.set_default_timeout(30_000)
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)   # assertions too (5 s by default): a loaded CI box renders slowly
    return browser, page


def _artifacts() -> Path:
    folder = Path(os.environ.get("MEDSSL_ARTIFACTS") or REPO_ROOT / "test-artifacts") / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_label_train_explore_in_a_real_browser(app_server, tmp_path, _isolated_home) -> None:
    from playwright.sync_api import expect, sync_playwright

    train_npz, val_npz = _small_real_set(tmp_path / "data")
    shots = _artifacts()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(30_000)
        page.goto(app_server)
        page.get_by_label("name").fill("browser-chest")
        page.get_by_label("classes (comma-separated; mask classes for segmentation)").fill("normal, pneumonia")
        page.get_by_role("button", name="Create project").click()
        expect(page.get_by_text("browser-chest  ·  multiclass")).to_be_visible()
        page.get_by_text("Import images into").click()
        for path, unlabeled in ((train_npz, True), (val_npz, False)):
            page.get_by_label("folder or file on this machine").fill(str(path))
            checkbox = page.get_by_text("import without labels (unlabeled pool)").first
            if unlabeled != page.get_by_role("checkbox", name="import without labels (unlabeled pool)").first.is_checked():
                checkbox.click()
            page.get_by_role("button", name="Import folder").click()
            expect(page.get_by_text("imported", exact=False).first).to_be_visible()
            page.wait_for_timeout(500)
        page.screenshot(path=str(shots / "1-projects.png"))

        page.goto(f"{app_server}/label")
        expect(page.get_by_role("button", name="2 · pneumonia")).to_be_visible()
        page.screenshot(path=str(shots / "2-label.png"))
        for key in "12121":
            caption = page.locator("[data-testid='stImageCaption']").first.inner_text()
            page.keyboard.press(key)
            expect(page.locator("[data-testid='stImageCaption']").first).not_to_have_text(caption)

        page.goto(f"{app_server}/train")
        page.get_by_label("epochs").fill("1")
        page.get_by_role("button", name="Start training").click()
        page.screenshot(path=str(shots / "3-train.png"))
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:        # the worker trains, then analyzes; the map appears
            page.goto(f"{app_server}/explore")
            ready = page.locator(MAIN_CHART).or_(page.get_by_text("No model yet")).or_(
                page.get_by_text("is not analyzed yet"))
            expect(ready.first).to_be_visible(timeout=30_000)  # WebGL map: slow while a worker trains on every core
            if page.locator(MAIN_CHART).count():
                break
            page.wait_for_timeout(2000)
        expect(page.locator(MAIN_CHART).first).to_be_visible()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(shots / "4-explore.png"))
        _explore_click_and_box_select(page, shots)
        for name in ("uncertain", "relations", "models", "export"):
            page.goto(f"{app_server}/{name}")
            if name == "models":  # issue 16 §4: the SSL job's comparison with its supervised shadow, in words
                expect(page.get_by_text("vs supervised on your", exact=False).first).to_be_visible()
                expect(page.get_by_text("95 % CI", exact=False).first).to_be_visible()
            page.wait_for_timeout(2500)
            page.screenshot(path=str(shots / f"5-{name}.png"))
        model_file = _export_model_from_the_page(page, tmp_path)
        browser.close()
    _run_exported_model(model_file, val_npz)

    store = open_store(StoreConfig.from_env(home=_isolated_home))
    with store.sessions.begin() as s:
        rows = s.execute(select(Label.value, Annotator.name).join(Annotator).where(Label.source == "human")
                         .order_by(Label.id)).all()
    store.dispose()
    assert rows == [(0, ANNOTATOR), (1, ANNOTATOR), (0, ANNOTATOR), (1, ANNOTATOR), (0, ANNOTATOR)]


def _export_model_from_the_page(page, folder: Path) -> Path:
    """Journey 4's last step: export the active model on the Export page and download the TorchScript file."""
    from playwright.sync_api import expect

    page.get_by_role("button", name=re.compile(r"^Export checkpoint \d+")).click()
    button = page.get_by_role("button", name=re.compile(r"download model\.torchscript\.pt"))
    expect(button.first).to_be_visible(timeout=120_000)   # the worker builds it; the page refreshes every 2 s
    with page.expect_download() as download:
        button.first.click()
    target = folder / "downloaded.torchscript.pt"
    download.value.save_as(target)
    return target


def _run_exported_model(model_file: Path, images_npz: Path) -> None:
    """The downloaded model runs on images of the project's size and answers with class probabilities."""
    import cv2
    import torch

    model = torch.jit.load(str(model_file))
    size = int(model.size)   # the project's training size: another size is refused, so resize as the card says
    images = np.stack([cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
                       for image in np.load(images_npz)["images"][:4]])
    images = torch.from_numpy(images).unsqueeze(1)
    probs = model(images).detach().numpy()
    assert probs.shape == (4, 2) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)


def _explore_click_and_box_select(page, shots: Path) -> None:
    """Click a point -> preview -> "Open in Label" shows that case; the box tool over the map -> many
    selected -> gallery with the bulk-label button (not pressed: the label rows are checked afterwards)."""
    from playwright.sync_api import expect

    page.wait_for_function(MAP_DRAWN, timeout=60_000)
    point = page.evaluate("""() => {
        const g = document.querySelector("[data-testid='stMain'] .js-plotly-plot"), L = g._fullLayout, t = g._fullData[0];
        const box = g.querySelector('.nsewdrag').getBoundingClientRect();
        return {x: box.left + L.xaxis.d2p(t.x[0]), y: box.top + L.yaxis.d2p(t.y[0]),
                left: box.left, top: box.top, right: box.right, bottom: box.bottom}; }""")
    page.mouse.click(point["x"], point["y"])
    expect(page.get_by_role("button", name="Open in Label")).to_be_visible()
    image_id = page.locator("[data-testid='stImageCaption']").first.inner_text().split()[-1]
    page.screenshot(path=str(shots / "4b-explore-click.png"))
    page.get_by_role("button", name="Open in Label").click()
    page.wait_for_url(re.compile(r"/label(\?.*)?$"))  # the URL now carries ?project=…&image=…
    expect(page.locator("[data-testid='stImageCaption']").first).to_contain_text(f"image {image_id} ")

    page.locator("[data-testid='stSidebarNav'] a[href$='/explore']").click()
    page.wait_for_function(MAP_DRAWN, timeout=60_000)
    page.locator(MAIN_CHART).first.hover()
    page.locator('[data-title="Box Select"]').first.click()
    page.mouse.move(point["left"] + 2, point["top"] + 2)
    page.mouse.down()
    page.mouse.move(point["right"] - 2, point["bottom"] - 2, steps=8)
    page.mouse.up()
    heading = page.get_by_role("heading", name=re.compile(r"^\d+ selected$"))
    expect(heading).to_be_visible()
    assert int(heading.inner_text().split()[0]) > 1
    expect(page.get_by_role("button", name="unlabeled as", exact=False)).to_be_visible()
    page.screenshot(path=str(shots / "4c-explore-box.png"))
