"""Label page: one case at a time from the queue; number keys label, S skips, U undoes.

The model's suggestion stays hidden until the reader has answered (or turns it on), to avoid anchoring.
"""
from __future__ import annotations

from datetime import timedelta

import streamlit as st
from sqlalchemy import select

from app import state
from app.auth import acting_user, current_user_id
from app.queries import current_project
from app.resources import get_store
from app.text import md
from app.url_state import show_image, url_image
from app.views.label_canvas import PaintSetup, paint_canvas, paint_controls
from app.widgets.image import load_display, window_range
from app.widgets.image import render as render_pixels
from db.engine import write_session
from db.images import resolve_path
from db.labels import LabelError, history
from db.lease_shortcut import serve_next
from db.leases import holder, lease_case, readers_per_case, release, renew
from db.models import Image, Prediction, Project, UncertaintyScore
from db.reading import SETTLED, answer, skip, undo
from db.results import active_checkpoint_id
from db.roles import PermissionDenied

QUEUE_STATUSES = ("unlabeled", "uncertain")


def _act(action, *args, **kwargs):
    """Run a db.reading action for the logged-in reader in one write transaction; a refusal (lease lost, role)
    is a toast and the case is let go, never a crash."""
    try:
        with write_session(get_store().sessions) as session:
            project = session.get(Project, state.get(state.PROJECT))
            return action(session, project, *args, user=acting_user(session), **kwargs), None
    except (LabelError, PermissionDenied) as error:
        st.toast(md(error))
        return None, error


def _answer(session, project, image_id, value, kind, comment, user):
    return answer(session, project, session.get(Image, image_id), user, value, kind=kind, comment=comment)


def _save(kind: str, value=None) -> None:
    """Button callback: append the answer and move on (runs before the rerun, so the next case shows)."""
    image_id = state.get(state.CURRENT_IMAGE)
    comment = st.session_state.get(state.COMMENT) or None
    _, error = _act(_answer, image_id, value, kind, comment)
    if error is None:
        state.put(state.LAST_SAVED, image_id)
        st.session_state[state.COMMENT] = ""
    state.drop(state.CURRENT_IMAGE)


def _skip() -> None:
    _act(lambda session, project, image_id, user: skip(session, project, image_id, user),
         state.get(state.CURRENT_IMAGE))
    state.drop(state.CURRENT_IMAGE)


def _undo() -> None:
    image_id = state.get(state.LAST_SAVED)
    if image_id is None:
        st.toast("Nothing to undo in this session")
        return
    _, error = _act(lambda session, project, image_id, user: undo(session, project, session.get(Image, image_id),
                                                                    user), image_id)
    if error is not None:
        return
    current = state.get(state.CURRENT_IMAGE)
    if current is not None and current != image_id:
        with write_session(get_store().sessions) as session:
            release(session, current, current_user_id())   # back to the undone case: let the next one go
    state.put(state.CURRENT_IMAGE, image_id)
    state.drop(state.LAST_SAVED)


def _open_or_pinned(session, project: Project, user_id: int) -> int | None:
    """The case to show before the queue's next: the one open (its lease renewed), else a linked or pinned one
    (leased if it is still in the queue); None: take the queue's next. Call inside a write transaction."""
    image_id = state.get(state.CURRENT_IMAGE)
    if image_id is None and not state.get(state.URL_READ):  # a link or a reload: open the case it names, once
        image_id = url_image()
    state.put(state.URL_READ, True)
    candidates = [image_id] if image_id else []
    pinned = state.get(state.PINNED_QUEUE) or []
    image = None
    while image is None and (candidates or pinned):
        wanted = candidates.pop(0) if candidates else pinned.pop(0)
        state.put(state.PINNED_QUEUE, pinned)
        found = session.get(Image, wanted)
        if found is None or found.project_id != project.id:
            continue
        taken = found.label_status in QUEUE_STATUSES and lease_case(session, project, found.id, user_id) is None
        if taken and not any(uid == user_id for uid, _ in holder(session, found.id)):
            st.toast(f"Case {found.id} is being read by someone else; here is the next one.")
            continue
        image = found
    return image.id if image is not None else None


def _next_from_queue(project_id: int, user_id: int, checkpoint_id: int | None) -> int | None:
    """The queue's next case for this reader, leased (db.lease_shortcut: one round trip on PostgreSQL, so it
    runs after the page's first transaction, not inside it)."""
    lease = serve_next(get_store().sessions, project_id, user_id, checkpoint_id, state.session_start())
    return lease.image_id if lease else None


@st.fragment(run_every=timedelta(minutes=2))
def _keep_lease(project_id: int, image_id: int, user_id: int) -> None:
    """While the case stays open the lease is renewed, so a slow read is never handed to someone else."""
    with write_session(get_store().sessions) as session:
        renew(session, image_id, user_id, session.get(Project, project_id))


def _visible_history(session, project: Project, image: Image, user_name: str) -> list:
    """Blind double reading: until the case is settled a reader sees only their own rows (names are unique)."""
    entries = history(session, image.id)
    if readers_per_case(project) == 1 or image.label_status in SETTLED:
        return entries
    return [e for e in entries if e.annotator == user_name]


def _show_image(store, image: Image, paint: PaintSetup | None = None) -> None:
    """The case, windowed; for segmentation the mask canvas over it instead of a still image."""
    pixels = load_display(resolve_path(store.config.home, image.stored_path))
    controls = st.columns([2, 2, 1])
    window = None
    if pixels.dtype.kind != "u" or pixels.dtype.itemsize > 1:
        lo, hi = window_range(pixels)
        centre = controls[0].slider("window centre", lo, hi, float(image.window_center or (lo + hi) / 2))
        width = controls[1].slider("window width", 1.0, hi - lo, float(min(image.window_width or hi - lo, hi - lo)))
        window = (centre, width)
    zoom = controls[0 if window is None else 2].select_slider(
        "zoom", ["fit", 256, 384, 512, 768, 1024], value="fit", help="fit = the width of this column")
    invert = controls[2].toggle("invert")
    view = render_pixels(pixels, window, invert)
    caption = case_caption(image)
    if paint is not None:
        paint_canvas(view, paint, zoom, caption)
        return
    st.image(view, width="stretch" if zoom == "fit" else zoom, caption=caption)


def case_caption(image: Image) -> str:
    """Id and size only while the case is open: a source path such as `train/NORMAL/…` gives the answer away
    (anchoring). Once it has a label the name is shown too (it is always in the history and the exports)."""
    caption = f"image {image.id} · {image.width}×{image.height}"
    if image.label_status == "labeled" and image.source_name:
        caption += f" · {image.source_name} · {image.split}"
    return caption


def _answer_buttons(project: Project) -> None:
    if project.task == "multilabel":
        chosen = [i for i, name in enumerate(project.classes) if st.toggle(f"{i + 1} · {md(name)}", key=f"ml{i}")]
        st.button("Save (Enter)", type="primary", shortcut="Enter", on_click=_save, args=("class", chosen),
                  disabled=not chosen, use_container_width=True)
    else:
        for i, name in enumerate(project.classes[:9]):
            st.button(f"{i + 1} · {md(name)}", key=f"class{i}", shortcut=str(i + 1), on_click=_save,
                      args=("class", i), type="primary", use_container_width=True)
    _status_buttons()


def _status_buttons() -> None:
    """Skip / Undo / Unsure / Exclude and a comment: the same for every task."""
    cols = st.columns(4)
    cols[0].button("Skip", shortcut="s", on_click=_skip, use_container_width=True)
    cols[1].button("Undo", shortcut="u", on_click=_undo, use_container_width=True)
    cols[2].button("Unsure", on_click=_save, args=("uncertain",), use_container_width=True)
    cols[3].button("Exclude", on_click=_save, args=("exclude",), help="poor quality / wrong body part",
                   use_container_width=True)
    st.text_input("comment (optional)", key=state.COMMENT)


def _suggestion(session, project: Project, image: Image, checkpoint_id: int | None) -> None:
    if checkpoint_id is None:
        st.caption("No model yet: train one on the Train page (or `python -m engine train`).")
        return
    if not st.toggle("show model suggestion", key=state.SHOW_MODEL,
                     help="hidden until you answer, so the model does not anchor your reading"):
        return
    prediction = session.scalar(select(Prediction).where(Prediction.checkpoint_id == checkpoint_id,
                                                         Prediction.image_id == image.id))
    score = session.scalar(select(UncertaintyScore).where(UncertaintyScore.checkpoint_id == checkpoint_id,
                                                          UncertaintyScore.image_id == image.id))
    if prediction is None:
        st.caption("This case is not analyzed yet.")
        return
    probs = " · ".join(f"{md(name)} **{p:.3f}**" for name, p in zip(project.classes, prediction.probs))
    st.write(f"Model #{checkpoint_id}: {probs}")
    if score is not None:
        st.caption(f"entropy {score.entropy:.3f} · margin {score.margin:.3f}"
                   + (f" · teacher–student disagreement {score.disagreement:.3f}" if score.disagreement is not None else ""))


def render() -> None:
    store = get_store()
    project = current_project()
    if project is None:
        return
    with write_session(store.sessions) as session:
        project = session.merge(project, load=False)
        user = acting_user(session)
        checkpoint_id = active_checkpoint_id(session, project.id)
        image_id = _open_or_pinned(session, project, user.id)
        user_id, user_name = user.id, user.name
    if image_id is None:
        image_id = _next_from_queue(project.id, user_id, checkpoint_id)
    state.put(state.CURRENT_IMAGE, image_id)
    show_image(image_id)
    with store.sessions.begin() as session:
        project = session.merge(project, load=False)
        image = session.get(Image, image_id) if image_id is not None else None
        st.title(f"Label · {md(project.name)}")
        if image is None:
            st.success("Nothing left for you to read: every train case has its label or its readers (others may "
                       "still hold a few). Train a model, or import more images.")
            return
        _keep_lease(project.id, image.id, user_id)
        left, right = st.columns([3, 2])
        paint = None
        if project.task == "segmentation":
            with right:
                paint = paint_controls(session, image, list(project.classes))
        with left:
            _show_image(store, image, paint)
        with right:
            if project.task != "segmentation":
                _answer_buttons(project)
            else:
                _status_buttons()
            if state.get(state.LAST_SAVED) is not None or st.session_state.get(state.SHOW_MODEL):
                _suggestion(session, project, image, checkpoint_id)
            else:
                st.caption("The model's suggestion appears after you answer.")
            if readers_per_case(project) > 1:
                st.caption(f"Double reading: {readers_per_case(project)} readers answer each case without seeing "
                           "each other's answers.")
            with st.expander("label history"):
                for entry in _visible_history(session, project, image, user_name):
                    st.caption(f"{entry.created_at:%Y-%m-%d %H:%M} · {md(entry.annotator or '?')} · {entry.kind} "
                               f"{md(entry.value) if entry.value is not None else ''} ({entry.source})"
                               + (" · undone" if entry.voided else "") + (f" — {md(entry.comment)}" if entry.comment else ""))
