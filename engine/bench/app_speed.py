"""App latency (a script, not a test): Label page and Explore map at hospital scale.

    python -m engine.bench.app_speed [--images 100000] [--points 50000] [--repeats 20] [--browser-runs 3]

Fills a fresh SQLite store with N images (rows point at a few real chest X-ray PNGs; the page reads one
file per view, so file count does not matter), one analyzed checkpoint with ranks, 2-D coordinates,
predictions and uncertainty for `--points` of them, then measures with streamlit's AppTest (server time:
script run, queries, figure building): Label page first paint, save-to-next (a number key = one button
click), Explore page run. With Chromium present it also measures the Explore page in a real browser
(navigation until the WebGL map is drawn, then painted; first visit and revisit, median of
--browser-runs cold starts of app and browser). Baseline in the same run: the Projects page (a tiny page). The load
average before and after is recorded: on a shared machine it explains most of the spread.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import insert, select

from db.config import StoreConfig
from db.models import Checkpoint, Image, Prediction, Projection, UncertaintyScore
from db.projects import create_project
from db.store import open_store
from engine.bench.report import bench_header, write_result

REPO_ROOT = Path(__file__).resolve().parents[2]


def populate(home: Path, n_images: int, n_points: int, seed: int = 0) -> None:
    from engine.data.io import save_original

    rng = np.random.default_rng(seed)
    chest = np.load(REPO_ROOT.parent / "shared" / "data" / "chest_xray_pneumonia_64" / "val.npz")["images"]
    store = open_store(StoreConfig.from_env(home=home))
    files = [save_original(chest[i], store.config.images_dir / "bench" / str(i)).relative_to(home).as_posix()
             for i in range(16)]
    with store.sessions.begin() as s:
        project = create_project(s, "bench", "multiclass", ["normal", "pneumonia"], 64)
        checkpoint = Checkpoint(project_id=project.id, method="src_mt", path="none.pt", config={}, metrics={},
                                is_active=True)
        s.add(checkpoint)
        s.flush()
        project_id, checkpoint_id = project.id, checkpoint.id
    rows = [{"project_id": project_id, "stored_path": files[i % 16], "sha256": f"{i:064x}", "width": 64,
             "height": 64, "channels": 1, "dtype": "uint8", "split": "train", "source_name": f"case-{i}",
             "meta": {}, "label_status": "unlabeled"} for i in range(n_images)]
    with store.sessions.begin() as s:
        for start in range(0, n_images, 10_000):
            s.execute(insert(Image), rows[start:start + 10_000])
        ids = list(s.scalars(select(Image.id).order_by(Image.id)))[:n_points]
        probs = rng.dirichlet([1, 1], len(ids))
        coords = rng.standard_normal((len(ids), 2)) + rng.integers(0, 6, (len(ids), 1)) * 3
        ranks = rng.permutation(len(ids))
        for start in range(0, len(ids), 10_000):
            part = range(start, min(start + 10_000, len(ids)))
            s.execute(insert(Projection), [{"checkpoint_id": checkpoint_id, "image_id": ids[i], "method": "umap",
                                            "x": float(coords[i, 0]), "y": float(coords[i, 1])} for i in part])
            s.execute(insert(Prediction), [{"checkpoint_id": checkpoint_id, "image_id": ids[i],
                                            "predicted": int(probs[i].argmax()), "probs": probs[i].round(4).tolist()}
                                           for i in part])
            s.execute(insert(UncertaintyScore), [{"checkpoint_id": checkpoint_id, "image_id": ids[i],
                                                  "entropy": float(-(probs[i] * np.log(probs[i])).sum()),
                                                  "margin": float(1 - abs(probs[i, 0] - probs[i, 1])),
                                                  "acquisition_rank": int(ranks[i])} for i in part])
    store.dispose()


def _page(module: str):
    from streamlit.testing.v1 import AppTest

    def page(module_name: str) -> None:
        import importlib

        from app import state
        from app.resources import get_store
        from db.projects import list_projects

        with get_store().sessions.begin() as session:
            state.put(state.PROJECT, list_projects(session)[0].id)
        state.put(state.ANNOTATOR, "bench")
        importlib.import_module(module_name).render()

    return AppTest.from_function(page, args=(module,), default_timeout=120)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def server_times(repeats: int) -> dict[str, float]:
    label = _page("app.views.label")
    first_paint = [_timed(label.run) for _ in range(repeats)]   # each run = a page load
    saves = []
    for i in range(repeats):
        saves.append(_timed(lambda key=f"class{i % 2}": label.button(key=key).click().run()))
    explore = _page("app.views.explore")
    explore_runs = [_timed(explore.run) for _ in range(max(3, repeats // 5))]
    projects = _page("app.views.projects")
    baseline = [_timed(projects.run) for _ in range(max(3, repeats // 5))]
    ms = lambda xs: round(statistics.median(xs) * 1000, 1)
    return {"label_first_paint_median_ms": ms(first_paint), "label_save_to_next_median_ms": ms(saves),
            "label_save_to_next_p95_ms": round(float(np.percentile(saves, 95)) * 1000, 1),
            "explore_server_first_ms": round(explore_runs[0] * 1000, 1),    # cold: query + figure
            "explore_server_median_ms": ms(explore_runs), "baseline_projects_page_median_ms": ms(baseline)}


DRAWN = ("() => { const g = document.querySelector(\"[data-testid='stMain'] .js-plotly-plot\");"   # Plotly attaches the drawn traces
         " return !!(g && g._fullData && g._fullData.length && g._fullLayout); }")
PAINTED = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))"


def _navigate_to_explore(page) -> tuple[float, float]:
    """Seconds from clicking "Explore" in the sidebar (in-session navigation, as a user does) until the map's
    traces are drawn, and until two more animation frames have been produced (the WebGL canvas painted)."""
    start = time.perf_counter()
    page.locator("a[href$=\"/explore\"]").first.click()
    page.wait_for_function(DRAWN, timeout=120_000, polling="raf")
    drawn = time.perf_counter() - start
    page.evaluate(PAINTED)
    return drawn, time.perf_counter() - start


def _start_app(home: Path) -> tuple[subprocess.Popen, int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # single-user mode (loopback only): the bench times pages, not the login form
    env = {**os.environ, "MEDSSL_HOME": str(home), "MEDSSL_AUTOSTART_WORKER": "0", "MEDSSL_AUTH": "off"}
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port)],
                              cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(6)
    return server, port


def browser_explore(home: Path, runs: int = 3) -> dict[str, object] | None:
    """Real Chromium (software WebGL). Every run is a cold start of both sides, the worst case a user
    meets (e.g. right after new labels invalidated the server's cached map): a restarted app and a new
    browser (empty HTTP and code caches) open the default page, then navigate to Explore (first visit,
    Plotly's 4.7 MB script loads too), back to Projects and to Explore again (revisit)."""
    chromium = shutil.which("chromium")
    if chromium is None:
        return None
    from playwright.sync_api import sync_playwright

    first, painted, revisit = [], [], []
    for _ in range(runs):
        server, port = _start_app(home)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu",
                                                                            "--disable-background-networking"])
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.goto(f"http://localhost:{port}/")                     # Projects (default page)
                page.get_by_text("Projects").first.wait_for(timeout=60_000)
                page.wait_for_timeout(1500)
                drawn, shown = _navigate_to_explore(page)
                first.append(drawn)
                painted.append(shown)
                page.locator("[data-testid='stSidebarNav'] a").first.click()
                page.get_by_text("Projects").first.wait_for(timeout=60_000)
                page.wait_for_timeout(2000)
                revisit.append(_navigate_to_explore(page)[1])
                browser.close()
        finally:
            server.terminate()
            server.wait(20)
    med = lambda xs: round(statistics.median(xs), 2)
    return {"explore_browser_seconds": med(first), "explore_browser_painted_seconds": med(painted),
            "explore_browser_revisit_painted_seconds": med(revisit),
            "explore_browser_runs": {"drawn": [round(x, 2) for x in first], "painted": [round(x, 2) for x in painted],
                                     "revisit_painted": [round(x, 2) for x in revisit]}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--points", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--browser-runs", type=int, default=3, help="cold app + browser starts")
    parser.add_argument("--out", type=Path, default=Path("bench_out/app_speed.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        populate(home, args.images, args.points)
        os.environ.update({"MEDSSL_HOME": str(home), "MEDSSL_AUTOSTART_WORKER": "0"})
        os.environ.pop("MEDSSL_DB", None)
        result = {**bench_header("engine.bench.app_speed", argv), "images": args.images, "points": args.points,
                  "load_average_start": [round(x, 2) for x in os.getloadavg()], **server_times(args.repeats)}
        try:
            result.update(browser_explore(home, args.browser_runs) or {"explore_browser_seconds": None})
        except Exception as error:  # noqa: BLE001 -- keep the server numbers; say why the browser part is missing
            result["explore_browser_error"] = str(error).splitlines()[0]
        result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
