"""models, rollback, compare: the checkpoint registry from the command line."""
from __future__ import annotations

import argparse
import json

from db.models import Checkpoint
from db.queue_rank import publish as publish_queue_ranks
from db.results import flipped_predictions, list_checkpoints, set_active
from engine.cli.common import UsageError, acting_user, project_or_usage_error, store_from_args


def register(subparsers, parents) -> None:
    p = subparsers.add_parser("models", parents=parents, help="list checkpoints with metrics and label snapshot")
    p.add_argument("--project", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_models)

    p = subparsers.add_parser("rollback", parents=parents, help="make an earlier checkpoint the active one")
    p.add_argument("--project", required=True)
    p.add_argument("--checkpoint", type=int, required=True)
    p.set_defaults(handler=cmd_rollback)

    p = subparsers.add_parser("compare", parents=parents, help="predictions that flipped between two checkpoints")
    p.add_argument("--project", required=True)
    p.add_argument("first", type=int)
    p.add_argument("second", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_compare)


def _val_auc(checkpoint: Checkpoint) -> float | None:
    metrics = checkpoint.metrics or {}
    return ((metrics.get("val") or {}).get(metrics.get("role") or "student") or {}).get("auc")


def _checkpoint_dict(c: Checkpoint) -> dict:
    return {"id": c.id, "method": c.method, "backbone": c.backbone, "active": c.is_active, "job_id": c.job_id,
            "labels_used": c.labels_used, "label_hash": c.label_hash, "val_auc": _val_auc(c),
            "created_at": c.created_at.isoformat(), "metrics": c.metrics}


def _project_id(session, name: str) -> int:
    return project_or_usage_error(session, name).id


def cmd_models(args: argparse.Namespace) -> int:
    store = store_from_args(args, read=True)
    with store.sessions.begin() as session:
        rows = [_checkpoint_dict(c) for c in list_checkpoints(session, _project_id(session, args.project))]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        auc = "n/a" if row["val_auc"] is None else f"{row['val_auc']:.4f}"
        print(f"{'*' if row['active'] else ' '} #{row['id']:<4} {row['method']:13s} {row['backbone'] or '':15s} "
              f"val AUC {auc}  labels {row['labels_used']} ({(row['label_hash'] or '')[:10]})  {row['created_at']}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    store = store_from_args(args)
    with store.sessions.begin() as session:
        project_id = _project_id(session, args.project)
        checkpoint = session.get(Checkpoint, args.checkpoint)
        if checkpoint is None or checkpoint.project_id != project_id:
            raise UsageError(f"checkpoint {args.checkpoint} is not a checkpoint of {args.project!r}")
        set_active(session, checkpoint.id, actor=acting_user(session, args, "rollback"))
    publish_queue_ranks(store.sessions, project_id)   # the labeling queue follows the rolled-back ranking
    print(f"checkpoint {args.checkpoint} is now active for {args.project!r}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    store = store_from_args(args, read=True)
    with store.sessions.begin() as session:
        project_id = _project_id(session, args.project)
        pair = [session.get(Checkpoint, i) for i in (args.first, args.second)]
        if any(c is None or c.project_id != project_id for c in pair):
            raise UsageError("both checkpoints must belong to the project")
        flips = flipped_predictions(session, args.first, args.second)
        deltas = {"val_auc": (_val_auc(pair[1]) or 0) - (_val_auc(pair[0]) or 0),
                  "labels_used": pair[1].labels_used - pair[0].labels_used}
    result = {"first": args.first, "second": args.second, "deltas": deltas, "flipped": len(flips),
              "flipped_images": [{"image_id": i, "first": p, "second": q} for i, p, q in flips]}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"#{args.first} -> #{args.second}: val AUC {deltas['val_auc']:+.4f}, "
              f"labels {deltas['labels_used']:+d}, {len(flips)} predictions flipped")
        for i, p, q in flips[:50]:
            print(f"  image {i}: {p} -> {q}")
    return 0
