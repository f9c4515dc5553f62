"""settings: show or change a project's settings (activation rule, auto-retrain, MC passes, AL strategy)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from db.project_settings import SETTINGS, effective, parse_assignment, update
from engine.cli.common import UsageError, acting_user, project_or_usage_error, store_from_args


def register(subparsers, parents) -> None:
    p = subparsers.add_parser("settings", parents=parents, help="show or change a project's settings",
                              epilog="keys: " + "; ".join(f"{k} ({s.meaning}, default {s.default})"
                                                          for k, s in SETTINGS.items()))
    p.add_argument("--project", required=True)
    p.add_argument("assignments", nargs="*", metavar="KEY=VALUE", help="settings to change (none: list them)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="the same, as an option")
    p.add_argument("--pacs-secret-file", type=Path, metavar="F",
                   help="store the PACS password (basic) or token (bearer) from F's first line, in a 0600 file "
                        "outside the data folder (MEDSSL_SECRETS_DIR); an empty file removes it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_settings)


def cmd_settings(args: argparse.Namespace) -> int:
    try:
        changes = dict(parse_assignment(text) for text in [*args.assignments, *args.set])
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    secret = _read_secret(args.pacs_secret_file) if args.pacs_secret_file else None
    store = store_from_args(args, read=not changes and secret is None)
    with store.sessions.begin() as session:
        project = project_or_usage_error(session, args.project)
        if changes:
            actor = acting_user(session, args, "project_settings", project)
            try:
                values = update(session, project, changes, actor=actor)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        else:
            values = effective(project)
        if secret is not None:
            from db import audit
            from engine.data.pacs.connection import save_secret

            actor = acting_user(session, args, "project_settings", project)
            save_secret(project.id, secret)
            audit.record(session, actor, "settings.pacs_secret", project_id=project.id, target_kind="project",
                         target_id=project.id, after={"stored": bool(secret)})   # never the secret itself
    if args.json:
        print(json.dumps(values, indent=2))
    else:
        for key, value in values.items():
            print(f"{key} = {value}")
    return 0


def _read_secret(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    return lines[0].strip() if lines else ""
