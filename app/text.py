"""User text shown as text: project, class and annotator names, comments, file names, DICOM free text.

Streamlit renders Markdown (images, links, colour directives, LaTeX) in titles, captions, alerts, toasts and
widget labels, and Plotly renders a subset of HTML in hover text and legends. An injected `![](http://…)` in a
project name once made every visitor's browser fetch an outside URL. Everything a user typed goes through
`md()` before it reaches a Markdown element and through `html()` before it reaches Plotly.
"""
from __future__ import annotations

import html as _html
import re
from typing import Any

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=^&])")


def md(value: Any) -> str:
    """Escape every Markdown control character (CommonMark backslash escapes) and fold line breaks."""
    text = " ".join(str(value).split("\n")) if value is not None else ""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text.replace("\r", " "))


def html(value: Any) -> str:
    """Escape for Plotly's HTML subset (hover templates, trace names, axis labels)."""
    return _html.escape("" if value is None else str(value), quote=True)
