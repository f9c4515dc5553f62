"""init, import, status, export: the commands that move data in and out of the store."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from tqdm import tqdm

from db import audit
from db.enums import Split, Task
from db.exports import LABEL_FIELDS, label_records, prediction_records, to_csv, to_json
from db.projects import get_project, require_project
from db.results import active_checkpoint_id
from db.status import project_status
from engine.cli import ranges
from engine.cli.common import (
    UsageError,
    acting_user,
    finish_job,
    is_read_only,
    project_or_usage_error,
    store_from_args,
)
from engine.data.demo import DEMO_PROJECT, HOW_TO_IMPORT, demo_folder, import_demo, shared_data_dir
from engine.data.importer import ImportRequest, ImportUsageError, SourceMissingError, run_import
from engine.data.pacs.connection import PacsError


def register(subparsers, parents) -> None:
    p = subparsers.add_parser("init", parents=parents, help="create the data folder and database schema")
    p.set_defaults(handler=cmd_init)

    p = subparsers.add_parser("demo", parents=parents, help="import the real chest X-ray demo set")
    p.add_argument("--project", default=DEMO_PROJECT)
    p.set_defaults(handler=cmd_demo)

    p = subparsers.add_parser("import", parents=parents, help="import images (PNG/JPEG/DICOM/npz/folders)")
    p.add_argument("--project", required=True, help="project name (created when it does not exist)")
    p.add_argument("--task", choices=[t.value for t in Task], help="task, required to create a project")
    p.add_argument("--classes", help="comma-separated class names (mask classes for segmentation)")
    p.add_argument("--source", type=Path, help="file or folder to import")
    p.add_argument("--dicomweb", metavar="URL", nargs="?", const="",
                   help="import from a DICOMweb server (PACS) instead of --source; without URL: the project's "
                        "saved PACS connection")
    p.add_argument("--study", action="append", metavar="UID", help="with --dicomweb: a Study Instance UID "
                   "(repeatable; default: every study matching --query)")
    p.add_argument("--query", help="with --dicomweb: QIDO filters, e.g. 'Modality=CR&StudyDate=20240101-20241231'")
    p.add_argument("--limit", type=ranges.PACS_LIMIT, help="with --dicomweb: at most N instances")
    p.add_argument("--auth-file", type=Path, help="with --dicomweb: a file holding 'user:password' or "
                   "'Bearer TOKEN' (default: the project's saved connection)")
    p.add_argument("--split", choices=[s.value for s in Split], help="default: npz stem if train/val/test")
    p.add_argument("--labels", type=Path, help="CSV: filename,label or filename,<one column per class>")
    p.add_argument("--unlabeled", action="store_true", help="import images without their labels")
    p.add_argument("--image-size", type=ranges.IMAGE_SIZE, help="training size fixed at project creation")
    p.add_argument("--reference", action="store_true", help="reference PNG/JPEG in place instead of copying")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=cmd_import)

    p = subparsers.add_parser("status", parents=parents, help="counts, jobs and checkpoints of a project")
    p.add_argument("--project", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_status)

    p = subparsers.add_parser("export", parents=parents, help="export current labels as CSV or JSON")
    p.add_argument("--project", required=True)
    p.add_argument("--what", choices=["labels", "predictions", "model", "dicom-seg", "dicom-sr"], default="labels",
                   help="labels (CSV/JSON), predictions of the active checkpoint, the model (TorchScript + card), "
                        "or back to the PACS: masks as DICOM SEG, class labels as DICOM SR (TID 1500)")
    p.add_argument("--out", type=Path, help="FILE.csv / FILE.json, or a folder for --what model / dicom-*")
    p.add_argument("--to-dicomweb", metavar="URL", nargs="?", const="",
                   help="dicom-*: store the objects on this DICOMweb server (no URL: the saved PACS connection)")
    p.add_argument("--dicomweb", metavar="URL", help="dicom-*: where the source instances are fetched from "
                   "(default: the saved PACS connection, else --to-dicomweb)")
    p.add_argument("--auth-file", type=Path, help="dicom-*: 'user:password' or 'Bearer TOKEN' for the server")
    p.add_argument("--include-model", action="store_true",
                   help="dicom-*: also the active model's output for unlabeled images, marked as a model proposal")
    p.set_defaults(handler=cmd_export)


def cmd_demo(args: argparse.Namespace) -> int:
    """Import the real chest X-ray demo; without the data, explain how to import one's own images."""
    if demo_folder() is None:
        print(f"The demo data set is not here ({shared_data_dir()}). Import your own images instead, e.g.\n  "
              + HOW_TO_IMPORT)
        return 0
    store = store_from_args(args)
    with store.sessions.begin() as session:
        acting_user(session, args, "import")
    for split, report in import_demo(store, args.project):
        print(f"{split}: " + report.summary().splitlines()[0])
    with store.sessions.begin() as session:
        status = project_status(session, require_project(session, args.project))
    print(f"demo project {args.project!r} ready: {status['images']} images, {status['labeled']} labeled. "
          f"Next: python -m engine status --project {args.project}")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    store = store_from_args(args)
    print(f"database ready at {store.config.db_url}; data folder {store.config.home}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    if (args.source is None) == (args.dicomweb is None):
        raise UsageError("give --source PATH or --dicomweb URL (one of them)")
    if args.source is not None and (args.study or args.query or args.limit or args.auth_file):
        raise UsageError("--study, --query, --limit and --auth-file go with --dicomweb")
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    request = ImportRequest(project=args.project, source=args.source, task=args.task, classes=classes,
                            split=args.split, labels_csv=args.labels, unlabeled=args.unlabeled,
                            image_size=args.image_size, reference=args.reference)
    store = store_from_args(args)
    with store.sessions.begin() as session:
        actor = acting_user(session, args, "import")
        request = dataclasses.replace(request, annotator=actor.name, actor_id=actor.id)
    bar = tqdm(unit="img", desc="import", disable=args.json or not sys.stderr.isatty())

    def progress(done: int, total: int | None) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        report = run_import(store, request, on_progress=progress) if args.source is not None \
            else _pacs_import(store, request, args, progress)
    except PacsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ImportUsageError as error:
        raise UsageError(str(error)) from error
    except SourceMissingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        bar.close()
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    return report.exit_code


def _pacs_import(store, request: ImportRequest, args: argparse.Namespace, progress):
    from engine.data.pacs.connection import connection_for
    from engine.data.pacs.pacs_import import PacsRequest, run_pacs_import

    with store.sessions.begin() as session:
        connection = connection_for(args.dicomweb or None, get_project(session, args.project), args.auth_file)
    return run_pacs_import(store, request, PacsRequest(connection, args.study, args.query, args.limit), progress)


def cmd_status(args: argparse.Namespace) -> int:
    store = store_from_args(args, read=True)
    with store.sessions.begin() as session:
        status = project_status(session, project_or_usage_error(session, args.project))
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print(f"{status['project']} ({status['task']}: {', '.join(status['classes'])})")
    print(f"  images {status['images']}: labeled {status['labeled']}, unlabeled {status['unlabeled']}, "
          f"uncertain {status['uncertain']}, excluded {status['excluded']}")
    for split, counts in status["splits"].items():
        print(f"  {split:5s}: {counts['images']} images, {counts['labeled']} labeled")
    print("  jobs: " + ", ".join(f"{k} {v}" for k, v in status["jobs"].items()))
    ckpt = status["checkpoints"]
    active = ckpt["active"]
    print(f"  checkpoints: {ckpt['count']}" + (f", active #{active['id']} {active['method']} "
                                               f"{active['metrics']}" if active else ""))
    print(f"  workers alive: {status['workers']['alive']}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    dicom = args.what.startswith("dicom-")
    if dicom and args.out is None and args.to_dicomweb is None:
        raise UsageError(f"--what {args.what} needs --to-dicomweb URL and/or --out DIR")
    if not dicom and (args.out is None or args.to_dicomweb is not None or args.include_model):
        raise UsageError("--out FILE is required; --to-dicomweb and --include-model go with --what dicom-seg|dicom-sr")
    if dicom:
        return _export_dicom(args)
    store = store_from_args(args, read=True)
    read_only = is_read_only(store)
    with store.sessions.begin() as session:
        project = project_or_usage_error(session, args.project)
        actor = acting_user(session, args, "export", project, create=not read_only)
        if actor is not None and not read_only:
            audit.record(session, actor, f"export.{args.what}", project_id=project.id, target_kind="project",
                         target_id=project.id)
        if args.what == "model":
            project_id = project.id
        elif args.what == "predictions":
            checkpoint_id = active_checkpoint_id(session, project.id)
            if checkpoint_id is None:
                raise UsageError("no active checkpoint: train a model first")
            rows, fields = prediction_records(session, project, checkpoint_id), None
        else:
            rows, fields = label_records(session, project), LABEL_FIELDS
    if args.what == "model":
        return _export_model(store, project_id, args.out, actor)
    if args.what == "predictions" and not rows:
        print(f"error: checkpoint {checkpoint_id} has no predictions yet; run `python -m engine analyze "
              f"--project {args.project} --wait` first", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    as_json = args.out.suffix.lower() == ".json"
    args.out.write_text(to_json(rows) if as_json else to_csv(rows, fields))
    print(f"wrote {len(rows)} {args.what} to {args.out}")
    return 0


def _export_dicom(args: argparse.Namespace) -> int:
    from engine.data.pacs.connection import connection_for
    from engine.data.pacs.writeback import WritebackRequest, run_writeback

    store = store_from_args(args)
    with store.sessions.begin() as session:
        project = project_or_usage_error(session, args.project)
        actor = acting_user(session, args, "export", project)
        try:
            target = connection_for(args.to_dicomweb or None, project, args.auth_file) \
                if args.to_dicomweb is not None else None
            saved_url = (project.settings or {}).get("pacs_url")
            fallback = target.url if target is not None and not saved_url else None   # fetch from where we store
            source = connection_for(args.dicomweb or fallback, project, args.auth_file)
        except PacsError as error:
            raise UsageError(str(error)) from None
    try:
        result = run_writeback(store, WritebackRequest(args.project, args.what, source, target, args.out,
                                                       args.include_model), actor)
    except PacsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    kind = "SEG" if args.what == "dicom-seg" else "SR"
    print(f"built {result.objects} DICOM {kind} objects for {result.images} images"
          + (f"; stored {result.stored} on {target.shown_url}" if target else "")
          + (f"; wrote {len(result.files)} files to {args.out}" if result.files else ""))
    for line in result.skipped[:20]:
        print(f"  skipped {line}")
    return 0


def _export_model(store, project_id: int, out: Path, actor=None) -> int:
    """Run an export job (here when no worker is alive) and copy its files to `out`."""
    import shutil

    from db.jobs import enqueue
    from db.models import Job
    from db.status import alive_workers

    with store.sessions.begin() as session:
        job_id = enqueue(session, "export", {}, project_id=project_id, actor=actor).id
        run_here = alive_workers(session) == 0
    job = finish_job(store, job_id, run_here)
    if job.status != "done":
        print(f"export failed: {job.error or job.message}", file=sys.stderr)
        return 1
    with store.sessions.begin() as session:
        files = session.get(Job, job_id).metrics["files"]
    out.mkdir(parents=True, exist_ok=True)
    for relative in files:
        shutil.copy2(store.config.home / relative, out / Path(relative).name)
    print(f"wrote {', '.join(Path(f).name for f in files)} to {out}")
    return 0
