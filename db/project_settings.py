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
    "auto_retrain_labels": SettingSpec(_whole(0, 1_000_000), 0,
                                       "queue a train job after this many new labels (0: off)"),
    "mc_passes": SettingSpec(_whole(0, 100), 0, "MC-dropout passes in every analysis (0: off, else 2 or more)"),
    "min_labels_warn": SettingSpec(_whole(2, 10_000), 10, "warn before training below this many labels per class"),
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


def update(session: Session, project: Project, changes: dict[str, Any]) -> dict[str, Any]:
    """Store checked values (a new dict, so the JSON column sees the change)."""
    project.settings = {**(project.settings or {}), **changes}
    session.flush()
    return effective(project)
