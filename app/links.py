"""Links between pages: views import this (not app.navigation, which imports every view), so no circle."""
from __future__ import annotations

import streamlit as st

from app import state

LABEL_URL = "label"


def label_page() -> st.Page:
    """The Label page; st.switch_page matches pages by url_path, so this equals the one in app.navigation."""
    from app.views import label

    return st.Page(label.render, title="Label", url_path=LABEL_URL)


def open_in_label(image_id: int) -> None:
    """Show this case next on the Label page."""
    state.put(state.CURRENT_IMAGE, int(image_id))
    try:
        st.switch_page(label_page())
    except st.errors.StreamlitAPIException:  # outside st.navigation (unit tests): the id is set, that is enough
        pass
