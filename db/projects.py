"""Project and annotator lookups; names are the user-facing keys."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.enums import Task
from db.models import Annotator, Image, Project, utcnow


class ProjectError(ValueError):
    """A usage error about projects (unknown name, duplicate name, bad task or classes)."""


BACKGROUND = "background"


def validate_classes(task: str, classes: list[str]) -> list[str]:
    cleaned = [c.strip() for c in classes]
    if task not in {t.value for t in Task}:
        raise ProjectError(f"unknown task {task!r}; choose multiclass, multilabel or segmentation")
    if not cleaned or any(not c for c in cleaned):
        raise ProjectError("class names must be a non-empty list of non-empty names")
    if len(set(cleaned)) != len(cleaned):
        raise ProjectError(f"class names must be unique: {cleaned}")
    if task != Task.SEGMENTATION and len(cleaned) < 2:
        raise ProjectError("a classification project needs at least two classes")
    if task == Task.SEGMENTATION and cleaned[0].lower() != BACKGROUND:
        # mask value 0 is background: "lesion" alone means background + lesion (a mask with value 1 was
        # once refused because the project had "1 mask class")
        cleaned = [BACKGROUND, *(c for c in cleaned if c.lower() != BACKGROUND)]
    return cleaned


def set_classes(session: Session, project: Project, classes: list[str], actor: Annotator | None = None) -> list[str]:
    """Edit the class list while no image of the project carries a label (after that, indices are data)."""
    from db import audit
    from db.models import Label
    from db.roles import require

    if actor is not None:
        require(actor, "create_project")
    before = list(project.classes)

    labeled = session.scalar(select(Label.id).join(Image, Image.id == Label.image_id)
                             .where(Image.project_id == project.id).limit(1))
    if labeled is not None:
        raise ProjectError(f"project {project.name!r} already has labels: its classes can no longer change")
    project.classes = validate_classes(project.task, classes)
    session.flush()
    audit.record(session, actor, "project.classes", project_id=project.id, target_kind="project",
                 target_id=project.id, before=before, after=list(project.classes))
    return project.classes


def get_project(session: Session, name: str) -> Project | None:
    return session.scalars(select(Project).where(Project.name == name)).first()


def require_project(session: Session, name: str) -> Project:
    project = get_project(session, name)
    if project is None:
        known = ", ".join(session.scalars(select(Project.name).order_by(Project.name))) or "none yet"
        raise ProjectError(f"no project named {name!r} (projects: {known})")
    return project


def create_project(session: Session, name: str, task: str, classes: list[str], image_size: int,
                   channels: int = 1, actor: Annotator | None = None) -> Project:
    from db import audit
    from db.roles import require

    if actor is not None:
        require(actor, "create_project")
    name = name.strip()
    if not name:
        raise ProjectError("project name must not be empty")
    if get_project(session, name) is not None:
        raise ProjectError(f"a project named {name!r} already exists")
    project = Project(name=name, task=task, classes=validate_classes(task, classes),
                      image_size=int(image_size), channels=channels, settings={})
    session.add(project)
    session.flush()
    audit.record(session, actor, "project.create", project_id=project.id, target_kind="project",
                 target_id=project.id, after={"name": project.name, "task": task, "classes": list(project.classes)})
    return project


def list_projects(session: Session) -> list[Project]:
    """Most recently used first: the app opens on the first one."""
    return list(session.scalars(select(Project).order_by(Project.last_used_at.desc(), Project.id.desc())))


def touch_project(session: Session, project: Project) -> None:
    project.last_used_at = utcnow()


def get_or_create_annotator(session: Session, name: str) -> Annotator:
    """A provenance identity by name (imports, the demo), created as an upsert when missing."""
    from db.users import ensure_user

    return ensure_user(session, name.strip() or "unknown")
