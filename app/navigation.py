"""The page list in one place, so views can link to each other (st.switch_page) without import cycles."""
from __future__ import annotations

import streamlit as st


def pages() -> dict[str, st.Page]:
    from app.views import explore, export, label, models, projects, relations, train, uncertain

    return {
        "projects": st.Page(projects.render, title="Projects", url_path="projects", default=True),
        "label": st.Page(label.render, title="Label", url_path="label"),
        "train": st.Page(train.render, title="Train", url_path="train"),
        "explore": st.Page(explore.render, title="Explore", url_path="explore"),
        "relations": st.Page(relations.render, title="Relations", url_path="relations"),
        "uncertain": st.Page(uncertain.render, title="Uncertain cases", url_path="uncertain"),
        "models": st.Page(models.render, title="Models & metrics", url_path="models"),
        "export": st.Page(export.render, title="Export", url_path="export"),
    }


def open_in_label(image_id: int) -> None:
    """Show this case next on the Label page."""
    from app import state

    state.put(state.CURRENT_IMAGE, int(image_id))
    try:
        st.switch_page(pages()["label"])
    except st.errors.StreamlitAPIException:  # outside st.navigation (unit tests): the id is set, that is enough
        pass
