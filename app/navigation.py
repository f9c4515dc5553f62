"""The page list in one place (app/main.py routes it); views link to pages through app/links.py.

Pages a role cannot use are not listed (db/roles.py decides; the engine refuses the action anyway).
"""
from __future__ import annotations

import streamlit as st

from app.links import label_page
from db.models import Annotator
from db.roles import allowed

# page key -> the action a user needs to see it
PAGE_ACTION = {"projects": "view", "label": "label", "review": "review", "train": "train", "explore": "view",
               "relations": "view", "uncertain": "view", "models": "view", "export": "export", "audit": "audit",
               "users": "users"}


def pages(user: Annotator | None = None) -> dict[str, st.Page]:
    from app.views import audit, explore, export, models, projects, relations, review, train, uncertain, users

    every = {
        "projects": st.Page(projects.render, title="Projects", url_path="projects", default=True),
        "label": label_page(),
        "review": st.Page(review.render, title="Review", url_path="review"),
        "train": st.Page(train.render, title="Train", url_path="train"),
        "explore": st.Page(explore.render, title="Explore", url_path="explore"),
        "relations": st.Page(relations.render, title="Relations", url_path="relations"),
        "uncertain": st.Page(uncertain.render, title="Uncertain cases", url_path="uncertain"),
        "models": st.Page(models.render, title="Models & metrics", url_path="models"),
        "export": st.Page(export.render, title="Export", url_path="export"),
        "audit": st.Page(audit.render, title="Audit", url_path="audit"),
        "users": st.Page(users.render, title="Users", url_path="users"),
    }
    return {key: page for key, page in every.items() if user is None or allowed(user, PAGE_ACTION[key])}
