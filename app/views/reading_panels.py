"""Projects page panels for several readers: the reading settings form and reader agreement (kappa)."""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from app.auth import acting_user
from app.resources import get_store
from app.text import md
from db.models import Project
from db.project_settings import SETTINGS, effective, update
from db.roles import PermissionDenied

READING_KEYS = ("readers_per_case", "final_labels", "lease_minutes", "allow_bulk_label")


def reading_settings_form(project_id: int) -> None:
    with get_store().sessions.begin() as session:
        values = effective(session.get(Project, project_id))
    with st.form(f"reading_settings_{project_id}"):
        readers = st.selectbox("readers per case", [1, 2, 3], index=[1, 2, 3].index(values["readers_per_case"]),
                               help=SETTINGS["readers_per_case"].meaning)
        rule = st.selectbox("when readers disagree", ["final", "majority"],
                            index=["final", "majority"].index(values["final_labels"]),
                            format_func={"final": "a lead decides (review queue)",
                                         "majority": "a strict majority decides, else a lead"}.get)
        lease = st.number_input("lease (minutes)", 1, 240, int(values["lease_minutes"]),
                                help=SETTINGS["lease_minutes"].meaning)
        bulk = st.checkbox("annotators may bulk-label from Explore", value=bool(values["allow_bulk_label"]))
        if st.form_submit_button("Save reading settings"):
            changes: dict[str, Any] = {"readers_per_case": int(readers), "final_labels": rule,
                                       "lease_minutes": int(lease), "allow_bulk_label": bool(bulk)}
            try:
                with get_store().sessions.begin() as session:
                    update(session, session.get(Project, project_id), changes, actor=acting_user(session))
            except (ValueError, PermissionDenied) as error:
                st.error(f"Not saved: {md(error)}")
                return
            st.toast("reading settings saved")


def _kappa(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def agreement_panel(agreement: dict[str, Any]) -> None:
    """Cohen's kappa per reader pair (and per class), Fleiss' kappa for three readers, with counts."""
    st.caption(f"Reader agreement: {agreement['cases_read']} cases read by two or more readers, "
               f"{agreement['agreed']} agreed, {agreement['disagreed']} disagreed")
    rows = [{"readers": " · ".join(pair["readers"]), "cases": pair["n"], "observed agreement": pair["observed"],
             "Cohen's kappa": _kappa(pair["kappa"]),
             **{f"κ {name}": _kappa(k) for name, k in pair["per_class"].items()}} for pair in agreement["pairs"]]
    for pair in agreement["pairs"]:
        st.caption(f"Cohen's kappa {md(' · '.join(pair['readers']))}: {_kappa(pair['kappa'])} over {pair['n']} cases "
                   f"(observed agreement {pair['observed']:.0%})")
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")   # per class: one against the rest
    if agreement.get("fleiss"):
        st.caption(f"Fleiss' kappa over {agreement['fleiss']['n']} cases with three readers: "
                   f"{_kappa(agreement['fleiss']['kappa'])}")
