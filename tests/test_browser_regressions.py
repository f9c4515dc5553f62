"""Issue 13 regressions in a real Chromium: keys after a click (item 7), pages that stay current (item 8)."""
from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from db.config import StoreConfig
from db.models import Label
from db.store import open_store
from engine.cli import main
from tests.test_browser import CHROMIUM, app_server  # noqa: F401 - fixture

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
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(30_000)
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
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{app_server}/train")
        expect(page.get_by_text("No checkpoints yet.")).to_be_visible(timeout=30_000)
        store = open_store(StoreConfig.from_env(home=_isolated_home))
        with store.sessions.begin() as s:  # what a finished train job does
            add_checkpoint(s, 1, None, "src_mt", "compact_cnn", "checkpoints/x.pt", {}, {}, 4, "abc")
        store.dispose()
        expect(page.get_by_text("Set active")).to_be_visible(timeout=4_000)  # no reload: within the 3 s goal
        browser.close()
