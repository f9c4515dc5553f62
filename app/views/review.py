"""Review page (leads): cases whose readers disagreed. The lead sees every read, picks or writes the final
label with a comment, and the case leaves the queue; training uses final labels only."""
from __future__ import annotations

import streamlit as st

from app.auth import acting_user
from app.queries import current_project, thumbnails
from app.resources import get_store
from app.text import md
from db.engine import write_session
from db.labels import LabelError
from db.models import Image, Project
from db.reading import adjudicate, case_reads, review_queue
from db.roles import PermissionDenied

PAGE_SIZE = 20


def _answer_text(classes: list[str], kind: str, value) -> str:
    if kind != "class":
        return kind
    return ", ".join(classes[i] for i in value) if isinstance(value, list) else classes[value]


def _decide(project_id: int, image_id: int, kind: str, value, comment_key: str) -> None:
    """Button callback: the lead's final label (before the rerun, so the case leaves the list at once)."""
    comment = st.session_state.get(comment_key) or None
    try:
        with write_session(get_store().sessions) as session:
            adjudicate(session, session.get(Project, project_id), session.get(Image, image_id), acting_user(session),
                       value, kind=kind, comment=comment)
    except (LabelError, PermissionDenied) as error:
        st.toast(md(error))
        return
    st.toast(f"case {image_id} is final")


def render() -> None:
    project = current_project()
    if project is None:
        return
    st.title(f"Review · {md(project.name)}")
    with get_store().sessions.begin() as session:
        queue = review_queue(session, project.id, limit=PAGE_SIZE)
        reads = {image_id: case_reads(session, image_id) for image_id in queue}
    if not queue:
        st.success("No case waits for review: every double-read case agreed or has been decided.")
        return
    st.caption(f"{len(queue)} cases shown (oldest first). Each reader answered without seeing the others.")
    classes = list(project.classes)
    for image_id, thumb in zip(queue, thumbnails(queue, 256), strict=True):
        with st.container(border=True):
            left, right = st.columns([1, 2])
            left.image(thumb, caption=f"image {image_id}")
            for read in reads[image_id]:
                right.write(f"**{md(read.reader)}**: {md(_answer_text(classes, read.kind, read.value))}"
                            + (f" — {md(read.comment)}" if read.comment else ""))
            comment_key = f"review.comment.{image_id}"
            right.text_input("comment (why)", key=comment_key)
            options = [("class", [i] if project.task == "multilabel" else i, name) for i, name in enumerate(classes)]
            options += [("uncertain", None, "unsure"), ("exclude", None, "exclude")]
            cols = right.columns(min(len(options), 5))
            for n, (kind, value, text) in enumerate(options):
                cols[n % len(cols)].button(f"Final: {md(text)}", key=f"review.{image_id}.{n}", on_click=_decide,
                                           args=(project.id, image_id, kind, value, comment_key),
                                           use_container_width=True)
