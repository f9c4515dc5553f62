"""Journey 5 in Chromium on real PH2 dermoscopy: draw a mask on the Label page and save it, SECL trains,
and the next case opens with the model's proposal as an editable mask that one click accepts."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from db.config import StoreConfig
from db.models import Label
from db.store import open_store
from engine.cli import main
from engine.data.io import load_mask
from tests.conftest import shared_file
from tests.test_browser import CHROMIUM, app_server, new_page  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (CI installs Debian's)")]


def _human_masks(store) -> list[Label]:
    with store.sessions.begin() as s:
        return list(s.scalars(select(Label).where(Label.source == "human", Label.mask_path.is_not(None))
                              .order_by(Label.id)))


def test_draw_train_and_accept_a_proposal(app_server, tmp_path: Path, _isolated_home: Path) -> None:  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    bundle = np.load(shared_file("ph2_dermoscopy_seg_128/train.npz"))
    val = np.load(shared_file("ph2_dermoscopy_seg_128/val.npz"))
    for name, images, masks in (("labeled", bundle["images"][:6], bundle["masks"][:6]),
                                ("pool", bundle["images"][6:16], None), ("val", val["images"][:6], val["masks"][:6])):
        (tmp_path / name).mkdir()
        stem = "val" if name == "val" else "train"
        np.savez(tmp_path / name / f"{stem}.npz", images=images,
                 **({"masks": masks} if masks is not None else {}))
        assert main(["import", "--project", "ph2", "--task", "segmentation", "--image-size", "64",
                     "--source", str(tmp_path / name / f"{stem}.npz")]) == 0
    store = open_store(StoreConfig.from_env(home=_isolated_home))
    with sync_playwright() as p:
        browser, page = new_page(p)
        page.goto(f"{app_server}/label")
        save = page.get_by_role("button", name="Save mask (Enter)")
        expect(save).to_be_visible()
        canvas = page.locator("canvas.upper-canvas").or_(page.locator("canvas")).last   # fabric.js draws on top
        expect(canvas).to_be_visible(timeout=30_000)
        page.wait_for_timeout(1500)                               # the component draws its background first
        box = canvas.bounding_box()
        x0, y0 = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3
        page.mouse.move(x0, y0)
        page.mouse.down()
        for k in range(1, 11):
            page.mouse.move(x0 + k * box["width"] * 0.04, y0 + k * box["height"] * 0.04)
        page.mouse.up()
        page.wait_for_timeout(1500)                               # strokes reach the app (update_streamlit)
        save.click()
        deadline_hit = False
        for _ in range(50):
            if len(_human_masks(store)) == 1:
                deadline_hit = True
                break
            page.wait_for_timeout(200)
        assert deadline_hit, "the drawn mask was not saved"
        drawn = load_mask(_isolated_home / _human_masks(store)[0].mask_path)
        assert drawn.any()                                        # the stroke is in the saved mask

        assert main(["train", "--project", "ph2", "--epochs", "1", "--wait"]) == 0   # SECL, by the app's worker
        assert main(["analyze", "--project", "ph2", "--wait"]) == 0                 # proposals for the pool
        with store.sessions.begin() as s:
            proposals = s.scalar(select(func.count()).select_from(Label).where(Label.source == "model"))
        assert proposals > 0
        page.goto(f"{app_server}/label")
        expect(page.get_by_text(re.compile(r"model proposal \(checkpoint \d+\)")).first).to_be_visible()
        page.get_by_role("button", name="Accept proposal as is").click()
        for _ in range(50):
            if len(_human_masks(store)) == 2:
                break
            page.wait_for_timeout(200)
        browser.close()
    accepted = _human_masks(store)[1]
    with store.sessions.begin() as s:
        proposal = s.scalars(select(Label).where(Label.source == "model", Label.image_id == accepted.image_id)
                             .order_by(Label.id.desc())).first()
    store.dispose()
    assert proposal is not None and "accepted model proposal" in (accepted.comment or "")
    np.testing.assert_array_equal(load_mask(_isolated_home / accepted.mask_path),
                                  load_mask(_isolated_home / proposal.mask_path))
