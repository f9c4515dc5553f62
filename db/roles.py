"""Who may do what. The check lives here, below the UI: pages hide what a role cannot use, and every write
function calls `require` anyway, so a crafted request or a CLI call is refused the same way."""
from __future__ import annotations

from db.enums import Role
from db.models import Annotator, Project

ALL = frozenset(r.value for r in Role)
LEADS = frozenset({Role.ADMIN.value, Role.LEAD.value})
READERS = frozenset({Role.ADMIN.value, Role.LEAD.value, Role.ANNOTATOR.value})
ADMINS = frozenset({Role.ADMIN.value})

# action -> roles allowed; the verb is what a refusal says
ACTIONS: dict[str, tuple[frozenset[str], str]] = {
    "view": (ALL, "view projects"),
    "label": (READERS, "label cases"),
    "bulk_label": (LEADS, "bulk-label cases"),
    "review": (LEADS, "adjudicate disagreements"),
    "train": (LEADS, "start, cancel or retry training and analysis"),
    "rollback": (LEADS, "change the active model"),
    "export": (LEADS, "export labels, masks or models"),
    "project_settings": (LEADS, "change project settings"),
    "import": (ADMINS, "import images"),
    "create_project": (ADMINS, "create or change projects"),
    "users": (ADMINS, "manage users"),
    "audit": (ADMINS, "read the audit log"),
}


class PermissionDenied(PermissionError):
    """The user's role (or a disabled account) does not allow the action; the message says which."""


def allowed(user: Annotator | None, action: str, project: Project | None = None) -> bool:
    if user is None or user.disabled:
        return False
    roles, _ = ACTIONS[action]
    if user.role in roles:
        return True
    # annotators may bulk-label from Explore when the project allows it
    return (action == "bulk_label" and user.role == Role.ANNOTATOR.value and project is not None
            and bool((project.settings or {}).get("allow_bulk_label", False)))


def require(user: Annotator | None, action: str, project: Project | None = None) -> None:
    if allowed(user, action, project):
        return
    _, verb = ACTIONS[action]
    if user is None:
        raise PermissionDenied(f"log in to {verb}")
    if user.disabled:
        raise PermissionDenied(f"the account {user.name!r} is disabled")
    raise PermissionDenied(f"{user.name!r} is {user.role!r}: only {', '.join(sorted(ACTIONS[action][0]))} may {verb}")
