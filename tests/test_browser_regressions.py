"""Issue 13 regressions in a real Chromium: keys after a click (item 7), pages that stay current (item 8)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from db.config import StoreConfig
from db.models import Label
from db.store import open_store
from engine.cli import main
from tests.test_browser import CHROMIUM, app_server, new_page  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (CI installs Debian's)")]


def test_number_keys_work_after_clicking_a_toggle(app_server, tmp_path, _isolated_home) -> None:  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "train.npz", images=rng.integers(0, 255, (6, 32, 32), dtype=np.uint8),
             labels=np.full(6, -1))
    assert main(["import", "--project", "keys", "--task", "multiclass", "--classes", "normal,pneumonia",
                 "--source", str(tmp_path / "train.npz")]) == 0
    with sync_playwright() as p:
        browser, page = new_page(p)
        page.goto(f"{app_server}/label")
        expect(page.get_by_role("button", name="2 · pneumonia")).to_be_visible(timeout=30_000)
        page.get_by_text("invert", exact=True).click()          # a toggle takes the focus
        page.wait_for_timeout(800)
        first = page.locator("[data-testid='stImageCaption']").first.inner_text()
        page.keyboard.press("2")
        expect(page.locator("[data-testid='stImageCaption']").first).not_to_have_text(first)
        browser.close()
    store = open_store(StoreConfig.from_env(home=_isolated_home))
    with store.sessions.begin() as s:
        assert [r.value for r in s.scalars(select(Label))] == [1]
    store.dispose()


def test_train_page_shows_a_new_checkpoint_without_a_reload(app_server, tmp_path, _isolated_home) -> None:  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    from db.results import add_checkpoint

    rng = np.random.default_rng(1)
    np.savez(tmp_path / "train.npz", images=rng.integers(0, 255, (4, 32, 32), dtype=np.uint8),
             labels=np.array([0, 1, 0, 1]))
    assert main(["import", "--project", "live", "--task", "multiclass", "--classes", "a,b",
                 "--source", str(tmp_path / "train.npz")]) == 0
    with sync_playwright() as p:
        browser, page = new_page(p)
        page.goto(f"{app_server}/train")
        expect(page.get_by_text("No checkpoints yet.")).to_be_visible(timeout=30_000)
        store = open_store(StoreConfig.from_env(home=_isolated_home))
        with store.sessions.begin() as s:  # what a finished train job does
            add_checkpoint(s, 1, None, "src_mt", "compact_cnn", "checkpoints/x.pt", {}, {}, 4, "abc")
        store.dispose()
        expect(page.get_by_text("Set active")).to_be_visible(timeout=4_000)  # no reload: within the 3 s goal
        browser.close()


def test_label_page_follows_a_new_models_queue_without_a_reload(app_server, tmp_path,  # noqa: F811
                                                                 _isolated_home) -> None:
    """Journey 2: while a reader labels, training finishes and its analysis ranks the pool; the very next key
    press on the open Label page serves the new model's top-ranked case (no reload, no stale queue)."""
    from playwright.sync_api import expect, sync_playwright

    from db.models import Image, UncertaintyScore
    from db.queue_rank import publish
    from db.results import add_checkpoint

    rng = np.random.default_rng(2)
    np.savez(tmp_path / "train.npz", images=rng.integers(0, 255, (8, 32, 32), dtype=np.uint8),
             labels=np.full(8, -1))
    assert main(["import", "--project", "reorder", "--task", "multiclass", "--classes", "normal,pneumonia",
                 "--source", str(tmp_path / "train.npz")]) == 0
    caption = "[data-testid='stImageCaption']"
    with sync_playwright() as p:
        browser, page = new_page(p)
        page.goto(f"{app_server}/label")
        expect(page.get_by_role("button", name="2 · pneumonia")).to_be_visible(timeout=30_000)
        first = page.locator(caption).first.inner_text()
        page.keyboard.press("1")                                   # labeling goes on in the cold-start order
        expect(page.locator(caption).first).not_to_have_text(first)
        shown = int(page.locator(caption).first.inner_text().split()[1])
        store = open_store(StoreConfig.from_env(home=_isolated_home))
        with store.sessions.begin() as s:   # what a finished train + analyze job leaves: ranks, then published
            project_id = s.scalar(select(Image.project_id))
            ids = list(s.scalars(select(Image.id).where(Image.current_label_id.is_(None)).order_by(Image.id)))
            ranked = [i for i in reversed(ids) if i != shown]        # the model wants the last imported first
            checkpoint = add_checkpoint(s, project_id, None, "src_mt", "compact_cnn", "checkpoints/x.pt", {}, {},
                                        1, "abc")
            s.add_all(UncertaintyScore(checkpoint_id=checkpoint.id, image_id=i, entropy=0.5,
                                       acquisition_rank=rank) for rank, i in enumerate(ranked))
        publish(store.sessions, project_id)
        store.dispose()
        page.keyboard.press("2")                                   # the shown case answered: the next one is…
        expect(page.locator(caption).first).to_contain_text(f"image {ranked[0]} ", timeout=4_000)
        page.keyboard.press("1")
        expect(page.locator(caption).first).to_contain_text(f"image {ranked[1]} ", timeout=4_000)
        browser.close()


PAGES = ["projects", "label", "train", "explore", "relations", "uncertain", "models", "export"]


def test_every_page_renders_empty_classification_and_segmentation(app_server, tmp_path,  # noqa: F811
                                                                  _isolated_home) -> None:
    """Issue 13: screenshots of every page at 1440x900 (CI keeps them as artifacts), none showing an error."""
    from playwright.sync_api import expect, sync_playwright

    from tests.conftest import shared_file
    from tests.test_browser import _artifacts

    folder = _artifacts() / "pages"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2)

    def classification() -> str:
        np.savez(tmp_path / "train.npz", images=rng.integers(0, 255, (8, 32, 32), dtype=np.uint8),
                 labels=np.array([0, 1, 0, 1, -1, -1, -1, -1]))
        assert main(["import", "--project", "chest", "--task", "multiclass", "--classes", "normal,pneumonia",
                     "--source", str(tmp_path / "train.npz")]) == 0
        return "?project=1"

    def segmentation() -> str:
        ph2 = np.load(shared_file("ph2_dermoscopy_seg_128/val.npz"))
        np.savez(tmp_path / "seg.npz", images=ph2["images"][:4], masks=ph2["masks"][:4])
        assert main(["import", "--project", "skin", "--task", "segmentation", "--classes", "lesion",
                     "--source", str(tmp_path / "seg.npz")]) == 0
        np.savez(tmp_path / "pool.npz", images=ph2["images"][4:6])  # unlabeled: the Label page shows the canvas
        assert main(["import", "--project", "skin", "--source", str(tmp_path / "pool.npz")]) == 0
        return "?project=2"

    with sync_playwright() as p:
        browser, page = new_page(p)
        for state, prepare in (("empty", lambda: ""), ("classification", classification),
                               ("segmentation", segmentation)):
            query = prepare()
            for name in PAGES:
                page.goto(f"{app_server}/{'' if name == 'projects' else name}{query}")
                expect(page.get_by_text("Research use only")).to_be_visible(timeout=30_000)
                page.wait_for_timeout(700)
                assert page.locator("[data-testid='stException']").count() == 0, (state, name)
                assert page.get_by_text("This page stopped").count() == 0, (state, name)
                page.screenshot(path=str(folder / f"{state}-{name}.png"))
        page.goto(f"{app_server}/export?project=1")  # the files are built on click (deferred data)
        with page.expect_download() as download:
            page.get_by_role("button", name="labels.csv").click()
        rows = Path(download.value.path()).read_text().strip().splitlines()
        assert rows[0].startswith("image_id,") and len(rows) == 1 + 4  # the 4 labeled chest images
        browser.close()
    assert len(list(folder.glob("*.png"))) == 3 * len(PAGES)
