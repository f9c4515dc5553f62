"""The only module that names st.session_state keys; values are ids and plain data, never ORM objects."""
from __future__ import annotations

from datetime import datetime, timezone

import streamlit as st

CURRENT_IMAGE = "label.current_image_id"
PROJECT = "project_id"
ANNOTATOR = "annotator_name"
SESSION_START = "session_started_at"
LAST_SAVED = "label.last_saved_image_id"
SHOW_MODEL = "label.show_model"
PINNED_QUEUE = "label.pinned_queue"   # ids chosen on Uncertain/Explore, labeled before the ranked queue
COMMENT = "label.comment"
PAINT_ERASE = "label.paint_erase"     # True while the mask brush erases
CANVAS_NONCE = "label.canvas_nonce"   # bumped by "Clear strokes": a new canvas key drops unsaved strokes
CANVAS_KEY = "label.canvas_key"       # the key of the canvas now shown (its value holds the strokes)
URL_READ = "label.url_read"           # the URL's case was offered once this session (later saves move on)


def start_key(image_id: int) -> str:
    """Widget key of the "start from" choice, one per image so each case opens on its best mask."""
    return f"label.start.{image_id}"


def default_annotator() -> str:
    from db.users import local_user_name

    return local_user_name()


def session_start() -> datetime:
    if SESSION_START not in st.session_state:
        st.session_state[SESSION_START] = datetime.now(timezone.utc)
    return st.session_state[SESSION_START]


def get(key: str, default=None):
    return st.session_state.get(key, default)


def put(key: str, value) -> None:
    st.session_state[key] = value


def drop(key: str) -> None:
    st.session_state.pop(key, None)
