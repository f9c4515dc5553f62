"""Options every subcommand accepts (--db, --home) and opening the store they point at."""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from db.config import StoreConfig, sqlite_file
from db.store import Store, open_store


class UsageError(Exception):
    """Printed as 'error: ...' with exit status 2."""


def default_annotator() -> str:
    from db.users import local_user_name

    return local_user_name()


def common_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("store")
    group.add_argument("--db", metavar="URL", help="database URL (default: $MEDSSL_DB or sqlite in --home)")
    group.add_argument("--home", metavar="DIR", help="data folder (default: $MEDSSL_HOME or ./medssl_data)")
    parser.add_argument("--user", "--annotator", dest="user", metavar="NAME", default=None,
                        help="who acts (default: $MEDSSL_USER, else the OS user); the CLI is the trusted local "
                             "admin tool and acts for this user without a password, within the user's role")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    return parser


def is_read_only(store: Store) -> bool:
    """A store opened read-only (a snapshot or archive): nothing, not even an audit row, can be written."""
    return store.config.db_url.startswith("sqlite:///file:")


def acting_user(session, args: argparse.Namespace, action: str | None = None, project=None, create: bool = True):
    """The account this command acts for, checked against `action` (db/roles.py).

    A name given with --user must be an existing account. The default identity ($MEDSSL_USER or the OS user:
    the person at this shell, who owns the data folder) is created on first use as an admin without a
    password, so the CLI works on a fresh install; such an account cannot log into the app.
    """
    from db.roles import PermissionDenied, require
    from db.users import ensure_user, find_user

    explicit = getattr(args, "user", None)
    name = explicit or default_annotator()
    user = find_user(session, name)
    if user is None:
        if explicit:
            raise UsageError(f"no user named {name!r}: add one with `python -m engine user add {name} --role ROLE`")
        if not create:   # read-only store: the local owner reads without an account row
            return None
        user = ensure_user(session, name, role="admin")
    if user.disabled:
        raise UsageError(f"the account {name!r} is disabled")
    if action is not None:
        try:
            require(user, action, project)
        except PermissionDenied as error:
            raise UsageError(str(error)) from None
    return user


def store_from_args(args: argparse.Namespace, read: bool = False) -> Store:
    """The store the options point at; a read command (`read=True`) never creates an SQLite database."""
    config = StoreConfig.from_env(home=args.home, db=args.db)
    path = sqlite_file(config.db_url)
    if not read or path is None:
        return open_store(config)
    if not path.exists():
        raise UsageError(f"no database at {path}: nothing was imported into this data folder yet (check --home / "
                         "MEDSSL_HOME, or --db)")
    if os.access(path.parent, os.W_OK):
        return open_store(config)
    # a read-only data folder (a snapshot, an archive): no migrations; with a WAL beside the file SQLite reads
    # it read-only through the existing -shm, without one nothing is pending and the file is read as immutable
    wal = Path(f"{path}-wal").exists() and Path(f"{path}-shm").exists()
    flags = "mode=ro" if wal else "mode=ro&immutable=1"
    readonly = dataclasses.replace(config, db_url=f"sqlite:///file:{path}?{flags}&uri=true")
    return open_store(readonly, migrate=False)


def project_or_usage_error(session, name: str):
    """The named project; an unknown name is a usage error (exit 2) that lists the known projects."""
    from db.projects import ProjectError, require_project

    try:
        return require_project(session, name)
    except ProjectError as error:
        raise UsageError(str(error)) from error


def finish_job(store: Store, job_id: int, run_here: bool):
    """Block until the job ends; with no worker alive (`run_here`), run it in this process first."""
    from engine.worker import Worker, wait_for_job

    if run_here:
        print("no worker alive: running the job in this process", file=sys.stderr)
        worker = Worker(store)
        try:
            worker.run_once(job_id=job_id)
        finally:
            worker.close()
    return wait_for_job(store, job_id)
