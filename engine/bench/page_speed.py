"""Selection and first-visit latency in a real browser (a script, not a test), issue 13 "feels live".

    python -m engine.bench.page_speed --points 5808 --out docs/results/page_speed_5808
    python -m engine.bench.page_speed --points 50000 --out docs/results/page_speed_50000

Fills a fresh SQLite store as engine.bench.app_speed does (every image mapped), plus what Relations and Models
read: a kNN graph (10 edges per image), labels on a tenth of the images (so possible label errors exist), an
evaluation report on the active checkpoint and a previous checkpoint whose predictions differ on some cases.
Then, per cold start of app and browser (1440×900, software WebGL), times from the user's action to the
result being on screen:
- first visit to Relations (sidebar click → the relation graph drawn and the label-error table shown),
- first visit to Models & metrics (sidebar click → ROC, confusion and reliability charts drawn, the flipped
  predictions counted),
- box select over the middle of the Explore map (mouse up → "N selected", the bulk-label button and every
  gallery thumbnail loaded),
- lasso over another region (mouse up → the new "N selected" and its gallery).
Baseline in the same run: the Projects page's own first paint after a sidebar click.
"""
from __future__ import annotations

import argparse
import math
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import insert, select, update

from db.config import StoreConfig
from db.models import Annotator, Checkpoint, Image, Label, Prediction, RelationEdge
from db.store import open_store
from engine.bench.app_speed import PAINTED, _start_app
from engine.bench.app_speed import populate as populate_map
from engine.bench.report import bench_header, write_result

K = 10
LABELED_SHARE = 0.1
SETTLED = ("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"   # the script run is over
           " && [...document.images].every(i => i.complete)")                   # and every image has loaded


# the Explore map itself (not the static placeholder, nor a chart of the page before) is drawn and interactive
MAP_DRAWN = ("() => [...document.querySelectorAll('.js-plotly-plot')].some(g => g._fullData"
             " && g._fullData.some(t => t.type === 'scattergl') && g.querySelector('.nsewdrag'))")


def populate(home: Path, n_points: int, seed: int = 0) -> None:
    """The map store of app_speed (all images mapped) plus edges, labels, an evaluation and a second checkpoint."""
    from engine.analysis.evaluation import evaluation_report

    populate_map(home, n_points, n_points, seed)
    rng = np.random.default_rng(seed + 1)
    store = open_store(StoreConfig.from_env(home=home))
    with store.sessions.begin() as s:
        ids = np.array(list(s.scalars(select(Image.id).order_by(Image.id))))
        active = s.scalar(select(Checkpoint).where(Checkpoint.is_active.is_(True)))
        truth = rng.integers(0, 2, 400)
        probs = np.clip(np.eye(2)[truth] * 0.6 + rng.dirichlet([1, 1], 400) * 0.4, 0, 1)
        active.metrics = {"evaluation": {"val": evaluation_report(probs, truth, "multiclass", ["normal", "pneumonia"])}}
        previous = Checkpoint(project_id=active.project_id, method="supervised", path="old.pt", config={},
                              metrics={}, is_active=False)
        s.add(previous)
        s.flush()
        annotator = Annotator(name="bench-reader", role="annotator")
        s.add(annotator)
        s.flush()
        old = s.execute(select(Prediction.image_id, Prediction.predicted)
                        .where(Prediction.checkpoint_id == active.id)).all()
        flips = rng.random(len(old)) < 0.05
        s.execute(insert(Prediction), [{"checkpoint_id": previous.id, "image_id": i,
                                        "predicted": 1 - p if flip else p, "probs": [0.5, 0.5]}
                                       for (i, p), flip in zip(old, flips)])
        # neighbours: mostly from the same stretch of ids (a cluster), some anywhere
        sources = np.repeat(ids, K)
        near = np.clip(np.searchsorted(ids, sources) + rng.integers(-50, 50, len(sources)), 0, len(ids) - 1)
        targets = np.where(rng.random(len(sources)) < 0.8, ids[near], rng.choice(ids, len(sources)))
        for start in range(0, len(sources), 50_000):
            part = slice(start, start + 50_000)
            s.execute(insert(RelationEdge), [
                {"checkpoint_id": active.id, "source_image_id": int(a), "target_image_id": int(b),
                 "rank": int(r), "similarity": float(sim)} for a, b, r, sim in
                zip(sources[part], targets[part], np.tile(np.arange(K), len(ids))[part],
                    rng.uniform(0.5, 0.99, len(sources))[part])])
        labeled = rng.choice(ids, max(1, int(len(ids) * LABELED_SHARE)), replace=False)
        values = rng.integers(0, 2, len(labeled))
        s.execute(insert(Label), [{"image_id": int(i), "annotator_id": annotator.id, "value": int(v),
                                   "source": "human"} for i, v in zip(labeled, values)])
        newest = dict(s.execute(select(Label.image_id, Label.id)).all())
        s.execute(update(Image), [{"id": int(i), "current_label_id": newest[int(i)], "label_status": "labeled"}
                                  for i in labeled])
    store.dispose()


def _click_page(page, path: str) -> None:
    links = page.locator("[data-testid='stSidebarNav'] a")
    # the default page (Projects) is linked as the app's root, not by its url_path
    (links.first if path == "projects" else page.locator(f"[data-testid='stSidebarNav'] a[href$='/{path}']").first
     ).click()


def _all(*predicates: str) -> str:
    """One JS predicate that holds when each of `predicates` (JS functions of no argument) does."""
    return f"() => [{', '.join(predicates)}].every(check => check())"


def _visit(page, path: str, *ready: str) -> float:
    """Seconds from the sidebar click until every `ready` predicate holds and the run has settled."""
    start = time.perf_counter()
    _click_page(page, path)
    page.wait_for_timeout(50)   # the status widget appears a few ms after the click
    try:
        page.wait_for_function(_all(*ready, SETTLED), timeout=120_000, polling="raf")
    except Exception:   # keep what the page showed, for whoever reads the traceback
        page.screenshot(path=str(Path(tempfile.gettempdir()) / "page_speed_failed.png"))
        raise
    return time.perf_counter() - start


def _plots_drawn(n: int) -> str:
    return ("() => { const g = [...document.querySelectorAll('.js-plotly-plot')];"
            f" return g.length >= {n} && g.every(p => p._fullData && p._fullLayout); }}")


def _heading_after(previous: str) -> str:
    return ("() => { const h = [...document.querySelectorAll('h3')].find(e => / selected$/.test(e.innerText));"
            f" return !!h && h.innerText !== {previous!r}"
            " && [...document.querySelectorAll('button')].some(b => b.innerText.includes('unlabeled as')); }")


def _map_box(page) -> dict[str, float]:
    return page.evaluate("() => { const g = [...document.querySelectorAll('.js-plotly-plot')].find(p => p._fullData"
                         " && p._fullData.some(t => t.type === 'scattergl'));"
                         " const b = g.querySelector('.nsewdrag').getBoundingClientRect();"
                         " return {left: b.left, top: b.top, w: b.width, h: b.height}; }")


def _select(page, tool: str, path: list[tuple[float, float]], previous: str) -> tuple[float, str]:
    """Draw `path` (fractions of the plot area) with the box or lasso tool; seconds from mouse up to the panel."""
    box = _map_box(page)
    page.mouse.move(box["left"] + box["w"] / 2, box["top"] + box["h"] / 2)   # the map's modebar shows
    page.evaluate("tool => [...document.querySelectorAll('.js-plotly-plot')].find(p => p._fullData && p._fullData"
                  ".some(t => t.type === 'scattergl')).querySelector(`[data-title=\"${tool}\"]`).click()", tool)
    points = [(box["left"] + fx * box["w"], box["top"] + fy * box["h"]) for fx, fy in path]
    page.mouse.move(*points[0])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x, y, steps=3)
    start = time.perf_counter()
    page.mouse.up()
    try:
        page.wait_for_function(_all(_heading_after(previous), SETTLED), timeout=60_000, polling="raf")
    except Exception:   # keep what the page showed, for whoever reads the traceback
        page.screenshot(path=str(Path(tempfile.gettempdir()) / "page_speed_failed.png"))
        raise
    seconds = time.perf_counter() - start
    heading = page.evaluate("() => [...document.querySelectorAll('h3')].find(e => / selected$/.test(e.innerText))"
                            ".innerText")
    return seconds, heading


def _lasso_path(cx: float, cy: float, r: float, corners: int = 24) -> list[tuple[float, float]]:
    angles = [2 * math.pi * k / corners for k in range(corners + 1)]
    return [(cx + r * math.cos(a), cy + 0.8 * r * math.sin(a)) for a in angles]


def browser_run(home: Path, chromium: str) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    server, port = _start_app(home)
    out: dict[str, float] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu",
                                                                        "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"http://localhost:{port}/")
            page.get_by_text("Projects").first.wait_for(timeout=60_000)
            page.wait_for_timeout(1500)
            out["relations_first_visit_s"] = _visit(
                page, "relations", _plots_drawn(1), "() => document.body.innerText.includes('Possible label errors (')")
            out["projects_visit_s"] = _visit(page, "projects", "() => true")   # baseline: a tiny page
            out["models_first_visit_s"] = _visit(
                page, "models", _plots_drawn(3), "() => document.body.innerText.includes('predictions flipped')")
            _click_page(page, "explore")
            page.wait_for_function(MAP_DRAWN, timeout=120_000, polling="raf")
            page.evaluate(PAINTED)
            page.wait_for_function(SETTLED, timeout=120_000)
            out["box_select_to_panel_s"], heading = _select(
                page, "Box Select", [(0.3, 0.3), (0.5, 0.5), (0.7, 0.7)], "")
            out["box_selected"] = int(heading.split()[0])
            out["lasso_to_panel_s"], heading = _select(page, "Lasso Select", _lasso_path(0.15, 0.8, 0.12), heading)
            out["lasso_selected"] = int(heading.split()[0])
            browser.close()
    finally:
        server.terminate()
        server.wait(20)
    return out


def main(argv: list[str] | None = None) -> int:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=5808, help="images, all of them mapped")
    parser.add_argument("--runs", type=int, default=3, help="cold app + browser starts")
    parser.add_argument("--out", type=Path, required=True, help="folder for results.json / results.md")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("page_speed needs Chromium (apt-get install chromium) and Playwright")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        began = time.perf_counter()
        populate(home, args.points)
        populate_s = time.perf_counter() - began
        os.environ.pop("MEDSSL_DB", None)
        load_start = [round(x, 2) for x in os.getloadavg()]
        runs = [browser_run(home, chromium) for _ in range(args.runs)]
    keys = [k for k in runs[0] if k.endswith("_s")]
    result = {**bench_header("engine.bench.page_speed", argv), "points": args.points, "runs": args.runs,
              "populate_s": round(populate_s, 1), "load_average_start": load_start,
              "load_average_end": [round(x, 2) for x in os.getloadavg()],
              "median_s": {k: round(statistics.median(r[k] for r in runs), 3) for k in keys},
              "per_run_s": {k: [round(r[k], 3) for r in runs] for k in keys},
              "selected": {k: [r[k] for r in runs] for k in ("box_selected", "lasso_selected")}}
    args.out.mkdir(parents=True, exist_ok=True)
    write_result(args.out / "results.json", result)
    (args.out / "results.md").write_text(markdown(result))
    return 0


GOALS = {"relations_first_visit_s": (1.0, 2.0), "models_first_visit_s": (1.0, 2.0),
         "box_select_to_panel_s": (1.0, 2.0), "lasso_to_panel_s": (1.0, 2.0), "projects_visit_s": (None, None)}


def markdown(r: dict) -> str:
    goal_index = 0 if r["points"] <= 10_000 else 1
    lines = [f"# Selection and first visits in Chromium: {r['points']:,} mapped images\n",
             (f"Command: `{r['command']}`  \nMachine: {r['machine']}; load average {r['load_average_start']} at start, "
             f"{r['load_average_end']} at the end\n"),
             "| step | median s | per run s | goal s | met |", "|---|---|---|---|---|"]
    for key, median in r["median_s"].items():
        goal = GOALS.get(key, (None, None))[goal_index]
        met = "–" if goal is None else ("yes" if median < goal else "**no**")
        lines.append(f"| {key.removesuffix('_s').replace('_', ' ')} | {median} | "
                     f"{' / '.join(map(str, r['per_run_s'][key]))} | {goal or 'baseline'} | {met} |")
    lines.append(f"\nPoints selected per run: box {r['selected']['box_selected']}, lasso {r['selected']['lasso_selected']}."
                 " Each run is a cold start of app and browser; goals from issue 13 (< 1 s at 5,808 points, "
                 "< 2 s at 50,000).")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
