"""queue next|release, label, review, audit: scripted reading with roles, leases and double reading
(CONTRACTS §9). Integrations and the concurrency tests drive reading through these."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from db import audit
from db.engine import write_session
from db.enums import LabelKind, LabelStatus
from db.labels import LabelError
from db.lease_shortcut import serve_next
from db.leases import release
from db.models import Image
from db.reading import adjudicate, answer, case_reads, review_queue
from db.results import active_checkpoint_id
from db.roles import PermissionDenied, allowed
from db.store import Store
from engine.cli.common import UsageError, acting_user, project_or_usage_error, store_from_args

NOTHING_LEFT = 3


def register(subparsers, parents) -> None:
    p = subparsers.add_parser("queue", help="the reading queue: next (lease a case), release")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    q = verbs.add_parser("next", parents=parents, help="lease the next case for --user (exit 3: none left)")
    q.add_argument("--project", required=True)
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_next)
    q = verbs.add_parser("release", parents=parents, help="give a leased case back to the queue")
    q.add_argument("--project", required=True)
    q.add_argument("--image", type=int, required=True)
    q.set_defaults(handler=cmd_release)

    p = subparsers.add_parser("label", parents=parents,
                              help="answer a case as --user (roles, leases and double reading apply)")
    p.add_argument("--project", required=True)
    p.add_argument("--image", type=int, required=True)
    p.add_argument("--value", help="class name (or index); several, comma-separated, for multi-label")
    p.add_argument("--kind", choices=[LabelKind.CLASS.value, LabelKind.UNCERTAIN.value, LabelKind.EXCLUDE.value],
                   default=LabelKind.CLASS.value)
    p.add_argument("--comment")
    p.add_argument("--review", action="store_true",
                   help="a lead's final word (adjudication); implied for a case waiting in the review queue")
    p.set_defaults(handler=cmd_label)

    p = subparsers.add_parser("review", parents=parents, help="cases whose readers disagreed, with their reads")
    p.add_argument("--project", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_review)

    p = subparsers.add_parser("audit", parents=parents, help="the audit log (admins): every write, newest first")
    p.add_argument("--project")
    p.add_argument("--who", metavar="NAME", help="only this user's events")
    p.add_argument("--action", help="action prefix, e.g. label, job, user, settings")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--json", action="store_true")
    p.add_argument("--csv", type=Path, metavar="FILE", help="write the events as CSV")
    p.set_defaults(handler=cmd_audit)


def parse_value(project, text: str | None, kind: str):
    """Class names (or indices) to the stored value: an index, or a sorted list for multi-label."""
    if kind != LabelKind.CLASS.value:
        return None
    if not text:
        raise UsageError("--value is needed for a class label")
    names = list(project.classes)
    indices = []
    for part in (p.strip() for p in text.split(",")):
        if part in names:
            indices.append(names.index(part))
        elif part.isdigit() and int(part) < len(names):
            indices.append(int(part))
        else:
            raise UsageError(f"unknown class {part!r}; classes: {', '.join(names)}")
    if project.task == "multilabel":
        return sorted(set(indices))
    if len(indices) != 1:
        raise UsageError("a multiclass label is one class")
    return indices[0]


@contextmanager
def reading(args: argparse.Namespace, store: Store | None = None) -> Iterator[tuple]:
    """One write transaction acting for --user, who must be allowed to label in --project (on `store`, else
    the one the options name)."""
    with write_session((store or store_from_args(args)).sessions) as session:
        project = project_or_usage_error(session, args.project)
        yield session, project, acting_user(session, args, "label", project)


def cmd_next(args: argparse.Namespace) -> int:
    store = store_from_args(args)
    with reading(args, store) as (session, project, user):   # the role check, then the lease on its own
        checkpoint_id = active_checkpoint_id(session, project.id)
    lease = serve_next(store.sessions, project.id, user.id, checkpoint_id)
    if lease is None:
        print(json.dumps({"image_id": None, "lease_expires": None}) if args.json else "nothing left to read")
        return NOTHING_LEFT
    if args.json:
        print(json.dumps({"image_id": lease.image_id, "lease_expires": lease.expires_at.isoformat()}))
    else:
        print(f"image {lease.image_id} leased to {user.name} until {lease.expires_at:%Y-%m-%d %H:%M:%S} UTC")
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    with reading(args) as (session, project, user):
        release(session, args.image, user.id)
        audit.record(session, user, "lease.release", project_id=project.id, target_kind="image", target_id=args.image)
    print(f"image {args.image} released")
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    with reading(args) as (session, project, user):
        image = session.get(Image, args.image)
        if image is None or image.project_id != project.id:
            raise UsageError(f"no image {args.image} in project {project.name!r}")
        value = parse_value(project, args.value, args.kind)
        decide = args.review or (image.label_status == LabelStatus.REVIEW.value and allowed(user, "review", project))
        try:
            if decide:
                row = adjudicate(session, project, image, user, value, kind=args.kind, comment=args.comment)
            else:
                row = answer(session, project, image, user, value, kind=args.kind, comment=args.comment)
        except (LabelError, PermissionDenied) as error:
            raise UsageError(str(error)) from None
        status = session.get(Image, image.id).label_status
    print(f"image {args.image}: {row.source} {args.kind} {args.value or ''} by {user.name} → {status}".rstrip())
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    store = store_from_args(args, read=True)
    with store.sessions.begin() as session:
        project = project_or_usage_error(session, args.project)
        acting_user(session, args, "review", project, create=False)   # reads reveal readers' answers
        names = list(project.classes)
        cases = [{"image_id": i, "reads": [{"reader": r.reader, "kind": r.kind, "value": r.value,
                                              "comment": r.comment} for r in case_reads(session, i)]}
                 for i in review_queue(session, project.id)]
    if args.json:
        print(json.dumps(cases, indent=2))
        return 0

    def shown(read: dict) -> str:
        value = read["value"]
        if read["kind"] != "class":
            return read["kind"]
        return ",".join(names[v] for v in value) if isinstance(value, list) else names[value]

    for case in cases:
        print(f"image {case['image_id']}: " + "; ".join(f"{r['reader']}: {shown(r)}" for r in case["reads"]))
    if not cases:
        print("no case waits for review")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from db.exports import to_csv

    store = store_from_args(args, read=True)
    with store.sessions.begin() as session:
        acting_user(session, args, "audit", create=False)
        project_id = project_or_usage_error(session, args.project).id if args.project else None
        rows = [audit.as_dict(e) for e in audit.events(session, project_id=project_id, user_name=args.who,
                                                        action=args.action, limit=args.limit)]
    if args.csv:
        args.csv.write_text(to_csv([{**r, "before": json.dumps(r["before"]), "after": json.dumps(r["after"])}
                                    for r in rows], audit.FIELDS))
        print(f"wrote {len(rows)} events to {args.csv}")
    elif args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            target = f"{r['target_kind']} {r['target_id']}" if r["target_kind"] else ""
            print(f"{r['at'][:19]}  {r['user_name'] or '(system)':16s} {r['action']:20s} {target}")
    if not (args.json or args.csv):
        print(f"{len(rows)} events", file=sys.stderr)
    return 0
