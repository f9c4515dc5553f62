"""Issue 14 in a real browser (Playwright + Debian's Chromium, app with accounts on): first admin from this
machine, login / wrong password / logout, pages by role, two annotators get different cases, a double-read
disagreement reaches the lead's review queue and the lead's decision is final, kappa on Projects."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from db.config import StoreConfig
from db.models import Image, Label
from db.project_settings import update as update_settings
from db.projects import require_project
from db.store import open_store
from db.users import add_user, first_admin
from engine.cli import main as cli
from tests.fixtures_images import gradient, write_png
from tests.test_browser import CHROMIUM, _artifacts, _free_port, _stop_workers, launch_app

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (CI installs Debian's)")]
PASSWORDS = {"ada": "ada password 1", "lea": "lea password 1", "ann1": "ann1 password", "ann2": "ann2 password"}


def _project(home: Path, tmp: Path, readers: int = 1) -> None:
    for i in range(8):
        write_png(tmp / "src" / f"{i}.png", gradient(32, 32, scale=i + 1))
    assert cli(["import", "--project", "chest", "--task", "multiclass", "--classes", "normal,pneumonia",
                "--source", str(tmp / "src"), "--unlabeled", "--home", str(home)]) == 0
    store = open_store(StoreConfig.from_env(home=home))
    with store.sessions.begin() as s:
        admin = first_admin(s, "ada", PASSWORDS["ada"])
        add_user(s, admin, "lea", "lead", PASSWORDS["lea"])
        add_user(s, admin, "ann1", "annotator", PASSWORDS["ann1"])
        add_user(s, admin, "ann2", "annotator", PASSWORDS["ann2"])
        if readers > 1:
            update_settings(s, require_project(s, "chest"), {"readers_per_case": readers}, actor=admin)
    store.dispose()


@pytest.fixture
def accounts_server(tmp_path, _isolated_home, monkeypatch):
    monkeypatch.delenv("MEDSSL_AUTH", raising=False)          # accounts on, as a fresh install has them
    port = _free_port()
    env = {**os.environ, "MEDSSL_HOME": str(_isolated_home), "MEDSSL_AUTOSTART_WORKER": "0"}
    server, log = launch_app(env, port, tmp_path / "streamlit.log")
    yield f"http://localhost:{port}"
    server.terminate()
    server.wait(20)
    _stop_workers(_isolated_home)
    log.close()


def _browser(p):
    return p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])


def _page(browser):
    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    page.set_default_timeout(30_000)
    return page


def _log_in(page, url: str, name: str, password: str | None = None) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    page.get_by_label("user name", exact=True).fill(name)
    page.get_by_label("password", exact=True).fill(password or PASSWORDS[name])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text(f"Logged in as {name}")).to_be_visible()


def _nav(page) -> list[str]:
    page.locator("[data-testid='stSidebarNav'] a").first.wait_for()
    return [t.strip() for t in page.locator("[data-testid='stSidebarNav'] a").all_inner_texts()]


def _case_on_label(page, url: str) -> int:
    from playwright.sync_api import expect

    page.goto(f"{url}/label")
    caption = page.locator("[data-testid='stImageCaption']").first
    try:
        expect(caption).to_contain_text("image ")
    except AssertionError:
        page.screenshot(path=str(_artifacts() / "accounts-label-failed.png"))
        raise
    return int(caption.inner_text().split()[1])


def test_first_admin_is_offered_on_this_machine(accounts_server) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = _browser(p)
        page = _page(browser)
        page.goto(accounts_server)
        expect(page.get_by_text("No account exists yet")).to_be_visible()
        page.get_by_label("admin user name").fill("root_admin")
        page.get_by_label("password", exact=True).fill("a long password")
        page.get_by_label("password again").fill("a long password")
        page.get_by_role("button", name="Create admin account").click()
        expect(page.get_by_text("Logged in as root_admin")).to_be_visible()
        assert {"Users", "Audit", "Train", "Export"} <= set(_nav(page))
        page.screenshot(path=str(_artifacts() / "accounts-first-admin.png"))
        browser.close()


def test_login_roles_and_different_cases(accounts_server, tmp_path, _isolated_home) -> None:
    from playwright.sync_api import expect, sync_playwright

    _project(_isolated_home, tmp_path)
    with sync_playwright() as p:
        browser = _browser(p)
        page = _page(browser)
        page.goto(accounts_server)
        expect(page.get_by_role("button", name="Log in")).to_be_visible()
        assert page.get_by_text("chest").count() == 0                 # nothing of the data before login
        page.get_by_label("user name", exact=True).fill("ann1")
        page.get_by_label("password", exact=True).fill("wrong password")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_text("wrong user name or password")).to_be_visible()
        _log_in(page, accounts_server, "ann1")
        pages = _nav(page)
        assert "Label" in pages and not {"Train", "Export", "Users", "Audit", "Review"} & set(pages)
        expect(page.get_by_text("Import images into")).to_have_count(0)
        page.goto(f"{accounts_server}/train")                         # typed by hand: still no training form
        expect(page.get_by_role("button", name="Start training")).to_have_count(0)
        page.screenshot(path=str(_artifacts() / "accounts-annotator.png"))

        other = _page(browser)                                        # a second browser profile
        _log_in(other, accounts_server, "ann2")
        first, second = _case_on_label(page, accounts_server), _case_on_label(other, accounts_server)
        assert first != second                                         # leased: never the same case
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("button", name="Log in")).to_be_visible()
        browser.close()


def test_double_reading_review_and_kappa(accounts_server, tmp_path, _isolated_home) -> None:
    from playwright.sync_api import expect, sync_playwright

    _project(_isolated_home, tmp_path, readers=2)
    with sync_playwright() as p:
        browser = _browser(p)
        one, two = _page(browser), _page(browser)
        _log_in(one, accounts_server, "ann1")
        _log_in(two, accounts_server, "ann2")
        case = _case_on_label(one, accounts_server)
        assert _case_on_label(two, accounts_server) == case           # double reading: both read this case
        one.keyboard.press("1")
        expect(one.locator("[data-testid='stImageCaption']").first).not_to_contain_text(f"image {case} ")
        two.keyboard.press("2")                                        # the readers disagree
        expect(two.locator("[data-testid='stImageCaption']").first).not_to_contain_text(f"image {case} ")

        lead = _page(browser)
        _log_in(lead, accounts_server, "lea")
        lead.goto(f"{accounts_server}/review")
        expect(lead.get_by_text(f"image {case}", exact=True)).to_be_visible()
        expect(lead.get_by_text("ann1: normal")).to_be_visible()
        expect(lead.get_by_text("ann2: pneumonia")).to_be_visible()
        lead.screenshot(path=str(_artifacts() / "accounts-review.png"))
        lead.get_by_label("comment (why)").fill("consolidation right lower lobe")
        lead.get_by_role("button", name="Final: pneumonia").click()
        expect(lead.get_by_text("No case waits for review")).to_be_visible()
        lead.goto(accounts_server)
        expect(lead.get_by_text("Cohen's kappa").first).to_be_visible()
        lead.screenshot(path=str(_artifacts() / "accounts-kappa.png"))
        browser.close()

    store = open_store(StoreConfig.from_env(home=_isolated_home))
    with store.sessions.begin() as s:
        image = s.get(Image, case)
        final = s.get(Label, image.current_label_id)
        reads = s.scalars(select(Label.value).where(Label.image_id == case, Label.source == "read")).all()
    store.dispose()
    assert sorted(reads) == [0, 1] and final.source == "review" and final.value == 1
    assert final.comment == "consolidation right lower lobe" and image.label_status == "labeled"
