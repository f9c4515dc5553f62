"""Can this project be trained yet? Checked below the UI (CLI, app and worker all ask the same function).

A one-class project once trained without a word into a useless model (val AUC 0.398). So training is refused
while any class has fewer than MIN_PER_CLASS labeled images, and a warning says when a class has fewer than
the project setting `min_labels_warn` (default 10).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from db.enums import Task
from db.images import label_counts
from db.models import Project

MIN_PER_CLASS = 2
WARN_PER_CLASS = 10


@dataclass
class Readiness:
    problems: list[str] = field(default_factory=list)  # any: training is refused
    warnings: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.problems


def training_readiness(session: Session, project: Project) -> Readiness:
    counts = label_counts(session, project.id, len(project.classes))
    out = Readiness()
    warn_at = int((project.settings or {}).get("min_labels_warn", WARN_PER_CLASS))
    if project.task == Task.SEGMENTATION:
        masks = session.scalar(_mask_count(project.id)) or 0
        if masks < MIN_PER_CLASS:
            out.problems.append(f"label at least {MIN_PER_CLASS} masks before training (now {masks})")
        elif masks < warn_at:
            out.warnings.append(f"only {masks} labeled masks: the model will be rough (aim for {warn_at}+)")
        return out
    few = [(name, n) for name, n in zip(project.classes, counts) if n < MIN_PER_CLASS]
    if few:
        listed = ", ".join(f"{name!r} ({n})" for name, n in few)
        out.problems.append(f"every class needs at least {MIN_PER_CLASS} labeled images before training; "
                            f"too few: {listed}")
    thin = [(name, n) for name, n in zip(project.classes, counts) if MIN_PER_CLASS <= n < warn_at]
    if thin:
        listed = ", ".join(f"{name!r} ({n})" for name, n in thin)
        out.warnings.append(f"few labels for {listed}: aim for {warn_at}+ per class for a useful model")
    return out


def _mask_count(project_id: int):
    from sqlalchemy import func, select

    from db.models import Image, Label

    return (select(func.count(Image.id)).join(Label, Label.id == Image.current_label_id)
            .where(Image.project_id == project_id, Label.mask_path.is_not(None)))
