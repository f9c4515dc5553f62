"""User text is shown as text: Markdown and HTML injected into names and comments never render (issue 12)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from app.text import html, md
from db.config import StoreConfig
from db.labels import add_label
from db.models import Image
from db.projects import get_or_create_annotator
from db.store import open_store
from engine.cli import main
from tests.test_views import _app, _page_app

IMAGE = "![x](http://127.0.0.1:9/beacon.png)"
PROJECT = f"cx {IMAGE}"
CLASSES = ["**bold**", "[link](http://127.0.0.1:9/)"]
ANNOTATOR = "<img src=http://127.0.0.1:9/a.png> :red[dr]"
COMMENT = "$\\LaTeX$ `code` ![y](http://127.0.0.1:9/c.png)"
RAW = [IMAGE, "**bold**", "](http", "<img", ":red[", "$\\LaTeX$", "![y]"]


def test_md_escapes_every_markdown_control_character() -> None:
    escaped = md(IMAGE + "\n# heading")
    assert "![" not in escaped and "](" not in escaped and "\n" not in escaped
    assert escaped.startswith("\\!\\[x\\]\\(http\\:") and md("normal") == "normal"
    assert html('<a href="x">&</a>') == "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"


MARKDOWN_OPTIONS = ("Radio", "ButtonGroup", "SegmentedControl", "Pills")  # selectbox options are plain text


def _texts(node) -> list[str]:
    """Every string an element renders as Markdown: values, bodies, labels, help, radio-like options."""
    out: list[str] = []
    for attr in ("value", "body", "label", "help", "options"):
        try:
            value = getattr(node, attr, None)
        except Exception:  # noqa: BLE001 - some element properties need a widget state
            value = None
        if isinstance(value, str):
            out.append(value)
        elif attr == "options" and isinstance(value, (list, tuple)) and type(node).__name__ in MARKDOWN_OPTIONS:
            out += [v for v in value if isinstance(v, str)]
    children = getattr(node, "children", None)
    if isinstance(children, dict):
        for child in children.values():
            out += _texts(child)
    return out


def _leaks(texts: list[str]) -> list[str]:
    """Texts holding an injected control sequence whose first character is not backslash-escaped."""
    def unescaped(raw: str, text: str) -> bool:
        start = text.find(raw)
        while start != -1:
            if start == 0 or text[start - 1] != "\\":
                return True
            start = text.find(raw, start + 1)
        return False
    return [t for t in texts if any(unescaped(raw, t) for raw in RAW)]


def _populate(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((32, 32), 50 * i, np.uint8))
    assert main(["import", "--project", PROJECT, "--task", "multiclass", "--classes", ",".join(CLASSES),
                 "--source", str(folder)]) == 0
    store = open_store(StoreConfig.from_env())
    with store.sessions.begin() as s:
        first, *rest = s.scalars(select(Image).order_by(Image.id.desc())).all()
        reader = get_or_create_annotator(s, ANNOTATOR)
        add_label(s, first, reader, 1, comment=COMMENT)
        for image in rest:  # unsure cases stay in the queue, so the Label page shows their history
            add_label(s, image, reader, kind="uncertain", comment=COMMENT)
    store.dispose()


@pytest.mark.parametrize("page", ["app.views.projects", "app.views.label", "app.views.train", "app.views.export",
                                  "app.views.explore", "app.views.relations", "app.views.uncertain",
                                  "app.views.models"])
def test_injected_markdown_never_reaches_a_markdown_element(page: str, tmp_path: Path) -> None:
    _populate(tmp_path)
    at = _page_app(page).run()
    assert not at.exception
    texts = _texts(at.main) + _texts(at.sidebar)
    assert any("beacon" in t for t in texts) or page != "app.views.projects"  # the name is shown, escaped
    assert _leaks(texts) == []


def test_sidebar_and_main_app_escape_the_project_name(tmp_path: Path) -> None:
    _populate(tmp_path)
    at = _app().run()
    assert not at.exception
    assert _leaks(_texts(at.main) + _texts(at.sidebar)) == []
