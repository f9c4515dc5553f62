"""The project settings a user may change, each parsed and checked before it is stored in Project.settings."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from db.models import Project


def _choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in options:
            raise ValueError(f"use one of: {', '.join(options)}")
        return text
    return parse


def _whole(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"a whole number from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueError(f"a whole number from {low} to {high}")
        return value
    return parse


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"true", "yes", "on", "1"}:
        return True
    if lowered in {"false", "no", "off", "0"}:
        return False
    raise ValueError("true or false")


def _url(text: str) -> str:
    """A DICOMweb root (http/https, no credentials in it), or empty for none."""
    from urllib.parse import urlsplit

    text = text.strip()
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("an http(s)://host[:port]/path URL of the DICOMweb root, or empty")
    if parts.username or parts.password:
        raise ValueError("no credentials in the URL (the password or token is kept apart from the database)")
    return text


def _name(text: str) -> str:
    text = text.strip()
    if len(text) > 128 or any(c in text for c in "\r\n\0"):
        raise ValueError("one line of at most 128 characters")
    return text


# engine.analysis.strategies.STRATEGIES by name (db/ does not import the engine; a test keeps them equal)
STRATEGY_NAMES = ("relation", "entropy", "margin", "least_confidence", "disagreement", "kcenter", "random")


@dataclass(frozen=True)
class SettingSpec:
    parse: Callable[[str], Any]
    default: Any
    meaning: str


SETTINGS: dict[str, SettingSpec] = {
    "activate": SettingSpec(_choice("best_on_val", "latest"), "best_on_val",
                            "which checkpoint of a semi-supervised job becomes active: the better on val of it and "
                            "its supervised shadow, or always the newest"),
    "allow_bulk_label": SettingSpec(_flag, False, "annotators may bulk-label from Explore (leads always may)"),
    "auto_retrain_labels": SettingSpec(_whole(0, 1_000_000), 0,
                                       "queue a train job after this many new labels (0: off)"),
    "final_labels": SettingSpec(_choice("final", "majority"), "final",
                                "double reading: a disagreement waits for a lead (final), or a strict majority "
                                "of readers decides (majority)"),
    "lease_minutes": SettingSpec(_whole(1, 240), 10, "how long a served case stays reserved for its reader"),
    "mc_passes": SettingSpec(_whole(0, 100), 0, "MC-dropout passes in every analysis (0: off, else 2 or more)"),
    "min_labels_warn": SettingSpec(_whole(2, 10_000), 10, "warn before training below this many labels per class"),
    "pacs_auth": SettingSpec(_choice("none", "basic", "bearer"), "none",
                             "how the saved PACS connection signs in (its password/token is not stored here)"),
    "pacs_url": SettingSpec(_url, "", "the project's DICOMweb root for import and write-back (empty: none)"),
    "pacs_user": SettingSpec(_name, "", "user name for basic auth to the PACS"),
    "readers_per_case": SettingSpec(_whole(1, 3), 1,
                                    "distinct readers each case is served to (2 or 3: double reading with review)"),
    "strategy": SettingSpec(_choice(*STRATEGY_NAMES), "relation", "active-learning ranking of the queue"),
}


def parse_assignment(text: str) -> tuple[str, Any]:
    """'key=value' -> (key, parsed value); a ValueError names the key and what it accepts."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep:
        raise ValueError(f"{text!r}: write key=value")
    if key not in SETTINGS:
        raise ValueError(f"unknown setting {key!r}; known: {', '.join(SETTINGS)}")
    try:
        return key, SETTINGS[key].parse(raw.strip())
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def effective(project: Project) -> dict[str, Any]:
    stored = project.settings or {}
    return {key: stored.get(key, spec.default) for key, spec in SETTINGS.items()}


def check_for_project(project: Project, changes: dict[str, Any]) -> None:
    """Rules that need the project: masks are read once (agreement of two masks is not a yes/no)."""
    if project.task == "segmentation" and changes.get("readers_per_case", 1) != 1:
        raise ValueError("readers_per_case: segmentation projects are read once (1)")


def update(session: Session, project: Project, changes: dict[str, Any], actor: Any = None) -> dict[str, Any]:
    """Store checked values (a new dict, so the JSON column sees the change); with an actor, its role is checked
    and the change audited (before/after of each key)."""
    from db import audit
    from db.roles import require

    if actor is not None:
        require(actor, "project_settings", project)
    check_for_project(project, changes)
    before = effective(project)
    project.settings = {**(project.settings or {}), **changes}
    session.flush()
    after = effective(project)
    changed = {k: after[k] for k in changes if before.get(k) != after[k]}
    if changed:
        audit.record(session, actor, "settings.change", project_id=project.id, target_kind="project",
                     target_id=project.id, before={k: before[k] for k in changed}, after=changed)
    return after
