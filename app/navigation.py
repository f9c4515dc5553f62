"""The page list in one place (app/main.py routes it); views link to pages through app/links.py."""
from __future__ import annotations

import streamlit as st

from app.links import label_page


def pages() -> dict[str, st.Page]:
    from app.views import explore, export, models, projects, relations, train, uncertain

    return {
        "projects": st.Page(projects.render, title="Projects", url_path="projects", default=True),
        "label": label_page(),
        "train": st.Page(train.render, title="Train", url_path="train"),
        "explore": st.Page(explore.render, title="Explore", url_path="explore"),
        "relations": st.Page(relations.render, title="Relations", url_path="relations"),
        "uncertain": st.Page(uncertain.render, title="Uncertain cases", url_path="uncertain"),
        "models": st.Page(models.render, title="Models & metrics", url_path="models"),
        "export": st.Page(export.render, title="Export", url_path="export"),
    }
