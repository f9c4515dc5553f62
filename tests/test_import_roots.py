"""Server-folder imports from the app stay inside MEDSSL_IMPORT_ROOTS; a refusal lists nothing (issue 12)."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from db.config import StoreConfig
from db.models import Project
from db.store import open_store
from engine.data.importer import ImportRequest, ImportUsageError, run_import
from engine.data.roots import OutsideRootsError, check_inside, configured_roots
from tests.test_views import _app


def _folder(root: Path) -> Path:
    folder = root / "xray" / "normal"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "a.png"), np.full((16, 16), 7, np.uint8))
    return root / "xray"


def test_check_inside_follows_links_and_refuses_outside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    inside = _folder(root)
    (root / "escape").symlink_to("/etc")
    roots = configured_roots({"MEDSSL_IMPORT_ROOTS": f"{root}{os.pathsep}{tmp_path / 'other'}"})
    assert roots == (root.resolve(), (tmp_path / "other").resolve())
    assert check_inside(inside, roots) == inside.resolve()
    for outside in (Path("/etc"), root / "escape", root / ".." / "elsewhere", Path("/")):
        with pytest.raises(OutsideRootsError, match="outside the import roots"):
            check_inside(outside, roots)
    with pytest.raises(OutsideRootsError, match="is off"):
        check_inside(inside, ())
    assert configured_roots({}) == ()


def test_importer_refuses_before_looking_and_creates_nothing(tmp_path: Path) -> None:
    store = open_store(StoreConfig.from_env())
    for source in (Path("/etc"), tmp_path / "missing"):  # the same answer whether or not it exists
        with pytest.raises(ImportUsageError) as caught:
            run_import(store, ImportRequest(project="p", source=source, task="multiclass", roots=(tmp_path / "r",)))
        assert "outside the import roots" in str(caught.value) and "passwd" not in str(caught.value)
    report = run_import(store, ImportRequest(project="p", source=_folder(tmp_path / "r"), task="multiclass",
                                             roots=((tmp_path / "r").resolve(),)))
    assert report.imported == 1
    with store.sessions.begin() as s:
        assert s.scalars(select(Project.name)).all() == ["p"]
    store.dispose()


def _create_project(at):
    next(t for t in at.text_input if t.label == "name").input("p")
    next(t for t in at.text_input if t.label.startswith("classes")).input("a, b")
    next(b for b in at.button if b.label == "Create project").click().run()
    return at


def test_app_without_roots_offers_no_server_folder_box(monkeypatch) -> None:
    monkeypatch.delenv("MEDSSL_IMPORT_ROOTS", raising=False)
    at = _create_project(_app().run())
    assert not at.exception
    assert not [t for t in at.text_input if t.label == "folder or file on this machine"]
    assert any("server folders is off" in i.value for i in at.info)


def test_app_refuses_a_folder_outside_the_roots_without_listing_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MEDSSL_IMPORT_ROOTS", str(tmp_path / "allowed"))
    (tmp_path / "allowed").mkdir()
    at = _create_project(_app().run())
    next(t for t in at.text_input if t.label == "folder or file on this machine").input("/etc")
    next(b for b in at.button if b.label == "Import folder").click().run()
    assert not at.exception
    assert any("outside the import roots" in e.value for e in at.error)
    assert not at.dataframe and not at.success  # nothing listed, nothing imported
