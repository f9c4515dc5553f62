"""Which server folders an import may read: the app is limited to MEDSSL_IMPORT_ROOTS, the CLI is not.

A path typed into the app's "server folder" box once listed /etc (883 file names in the import report). The
app passes the configured roots with every import request and the importer refuses a source outside them
before it looks at the path at all, so a refusal never tells whether something exists there.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV = "MEDSSL_IMPORT_ROOTS"


class OutsideRootsError(ValueError):
    """The source is not inside any configured import root (or none is configured)."""


def configured_roots(env: dict[str, str] | None = None) -> tuple[Path, ...]:
    """MEDSSL_IMPORT_ROOTS, os.pathsep-separated (`/data/xray:/mnt/export`); default: none."""
    raw = (os.environ if env is None else env).get(ENV, "")
    return tuple(Path(part).expanduser().resolve() for part in raw.split(os.pathsep) if part.strip())


def check_inside(source: Path, roots: tuple[Path, ...]) -> Path:
    """The resolved source when it lies inside one of `roots` (symlinks followed first), else refuse."""
    if not roots:
        raise OutsideRootsError(f"importing from server folders is off: set {ENV} to the folders the app may "
                                "read (or use the CLI, or upload a zip)")
    resolved = Path(os.path.realpath(Path(source).expanduser()))
    if not any(resolved == root or root in resolved.parents for root in roots):
        shown = os.pathsep.join(str(r) for r in roots)
        raise OutsideRootsError(f"refused: the source is outside the import roots ({ENV}={shown})")
    return resolved
