"""Journey 1 in Chromium: the app opens on an empty SQLite store, "Load demo" imports the real chest X-rays with
a report per split, and the Label page serves a case that a number key answers."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from db.config import StoreConfig
from db.models import Image, Label
from db.store import open_store
from tests.conftest import shared_file
from tests.test_browser import CHROMIUM, app_server, new_page  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (CI installs Debian's)")]


def test_first_five_minutes_with_the_demo(app_server, _isolated_home) -> None:  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    shared_file("chest_xray_pneumonia_64/train.npz")              # skips with a reason when ../shared is absent
    with sync_playwright() as p:
        browser, page = new_page(p)
        page.goto(app_server)
        expect(page.get_by_text("No project yet", exact=False).first).to_be_visible()
        page.get_by_role("button", name=re.compile(r"^Load demo")).click()
        for split in ("train", "val", "test"):                     # the import report, per split
            expect(page.get_by_text(re.compile(rf"^{split}: project .* imported \d+ images")).first).to_be_visible(
                timeout=180_000)
        page.goto(f"{app_server}/label")
        expect(page.get_by_role("button", name="2 · pneumonia")).to_be_visible()
        caption = page.locator("[data-testid='stImageCaption']").first
        before = caption.inner_text()
        assert "/" not in before                                   # no source path before the answer (item 11)
        page.keyboard.press("1")
        expect(caption).not_to_have_text(before)
        browser.close()
    store = open_store(StoreConfig.from_env(home=_isolated_home))
    with store.sessions.begin() as s:
        images = s.scalar(select(func.count()).select_from(Image))
        human = s.scalars(select(Label.value).where(Label.source == "human")).all()
    store.dispose()
    assert images > 5000 and human == [0]
