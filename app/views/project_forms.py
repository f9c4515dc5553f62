"""Projects page forms: create a project, import (server folder or upload), load the demo.

Bad input (empty class list, duplicate name, non-image upload, zip with path traversal) gives a clear
message and changes nothing: validation runs before any row or file is written.
"""
from __future__ import annotations

import errno
import tempfile
from pathlib import Path

import streamlit as st

from app import state
from app.auth import acting_account, acting_user
from app.resources import get_store
from app.text import md
from app.views.import_report import show_report
from db.models import Project
from db.projects import ProjectError, create_project, set_classes
from db.roles import PermissionDenied
from engine.data.archive import ArchiveError, safe_extract
from engine.data.demo import HOW_TO_IMPORT, demo_folder, import_demo
from engine.data.importer import ImportRequest, ImportUsageError, SourceMissingError, run_import
from engine.data.roots import ENV as ROOTS_ENV
from engine.data.roots import configured_roots

TASKS = ["multiclass", "multilabel", "segmentation"]


def create_form() -> None:
    with st.form("create_project", clear_on_submit=False):
        cols = st.columns([2, 1, 3])
        name = cols[0].text_input("name")
        task = cols[1].selectbox("task", TASKS)
        classes = cols[2].text_input("classes (comma-separated; mask classes for segmentation)",
                                     placeholder="normal, pneumonia")
        st.caption("Segmentation: name the mask classes, e.g. `lesion`; background (mask value 0) is added first "
                   "when you leave it out. Classes can be edited until the first label exists.")
        if st.form_submit_button("Create project"):
            names = [c.strip() for c in classes.split(",") if c.strip()]
            try:
                with get_store().sessions.begin() as session:
                    project = create_project(session, name, task, names, image_size=128,
                                             actor=acting_user(session))
                    state.put(state.PROJECT, project.id)
            except (ProjectError, PermissionDenied) as error:
                st.error(f"Not created: {md(error)}")
                return
            st.toast(f"created project {md(name)}")
            st.rerun()   # show the new project and its import form at once


def classes_form(project_id: int, name: str, classes: list[str], task: str) -> None:
    """Edit the class list of a project that has no label yet (after that, class indices are data)."""
    with st.form(f"classes_{project_id}"):
        text = st.text_input("classes", value=", ".join(classes), key=f"classes_text_{project_id}")
        if st.form_submit_button("Save classes"):
            try:
                with get_store().sessions.begin() as session:
                    saved = set_classes(session, session.get(Project, project_id),
                                        [c.strip() for c in text.split(",") if c.strip()], actor=acting_user(session))
            except (ProjectError, PermissionDenied) as error:
                st.error(f"Not changed: {md(error)}")
                return
            st.toast(f"classes of {md(name)}: {md(', '.join(saved))}")
            st.rerun()


def _run(request: ImportRequest) -> None:
    try:
        with st.spinner("importing…"):
            report = run_import(get_store(), request)
    except (ImportUsageError, SourceMissingError) as error:
        st.error(f"Nothing imported: {md(error)}")
        return
    except OSError as error:  # a full disk mid-import: the finished batches stay, a re-run skips them
        full = error.errno == errno.ENOSPC
        st.error(("Import stopped: the disk is full. " if full else f"Import stopped: {md(error.strerror or error)}. ")
                 + "Batches finished before this stay imported; free space and import again (duplicates are skipped).")
        return
    show_report(report)


def _save_upload(upload, folder: Path) -> Path:
    """A zip is unpacked safely; an npz or image file is kept under its own name (split from the stem)."""
    target = folder / Path(upload.name).name
    target.write_bytes(upload.getvalue())
    if target.suffix.lower() == ".zip":
        return safe_extract(target, folder / "unpacked")
    return target


def _folder_form(project_name: str, roots: tuple[Path, ...]) -> None:
    with st.form("import_folder"):
        st.caption("Allowed folders: " + md(", ".join(str(r) for r in roots)))
        path = st.text_input("folder or file on this machine")
        unlabeled = st.checkbox("import without labels (unlabeled pool)", key="unl_folder")
        if st.form_submit_button("Import folder") and path.strip():
            me = acting_account()
            _run(ImportRequest(project=project_name, source=Path(path.strip()).expanduser(), unlabeled=unlabeled,
                               annotator=me.name, actor_id=me.id, roots=roots))


def import_form(project_name: str, project_id: int) -> None:
    tab_folder, tab_upload, tab_pacs = st.tabs(["server folder", "upload zip / npz / image", "PACS (DICOMweb)"])
    with tab_pacs:
        from app.views import pacs_forms

        me = acting_account()
        pacs_forms.import_form(project_name, project_id, me.name, me.id)
    roots = configured_roots()
    with tab_folder:
        if not roots:
            st.info(f"Importing from server folders is off. To allow it, start the app with {ROOTS_ENV} set to the "
                    "folders it may read, e.g. `MEDSSL_IMPORT_ROOTS=/data/xray medssl app`. Uploads and the CLI "
                    "(`medssl import …`) work without it.")
        else:
            _folder_form(project_name, roots)
    with tab_upload, st.form("import_upload"):
        upload = st.file_uploader("zip of a folder, an .npz bundle, or one image", type=None)
        unlabeled = st.checkbox("import without labels (unlabeled pool)", key="unl_upload")
        if st.form_submit_button("Import upload") and upload is not None:
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    source = _save_upload(upload, Path(tmp))
                except ArchiveError as error:
                    st.error(md(error))
                    return
                me = acting_account()
                _run(ImportRequest(project=project_name, source=source, unlabeled=unlabeled,
                                   annotator=me.name, actor_id=me.id))


def demo_section() -> None:
    if demo_folder() is None:
        st.caption("The chest X-ray demo set is not on this machine. Import your own images above, or from "
                   f"the command line: `{HOW_TO_IMPORT}`")
        return
    if st.button("Load demo: 5,800 real pediatric chest X-rays (train pool unlabeled, val/test labeled)"):
        with st.spinner("importing the demo…"):
            for split, report in import_demo(get_store()):
                st.caption(f"{split}: " + md(report.summary().splitlines()[0]))
