"""user add|list|disable|enable|password|role: accounts from the shell (CONTRACTS §9).

Passwords come from a prompt or --password-file (never from the command line, where `ps` and shell history
would show them); --no-password makes an account the CLI acts for that cannot log into the app.
"""
from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from db.enums import Role
from db.users import AccountError, add_user, list_users, set_disabled, set_password, set_role
from engine.cli.common import UsageError, acting_user, store_from_args

ROLES = [r.value for r in Role]


def register(subparsers, parents) -> None:
    p = subparsers.add_parser("user", help="accounts: add, list, disable, enable, password, role")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    q = verbs.add_parser("add", parents=parents, help="add an account (admins only)")
    q.add_argument("name")
    q.add_argument("--role", choices=ROLES, required=True)
    _password_options(q)
    q.set_defaults(handler=cmd_add)

    q = verbs.add_parser("list", parents=parents, help="list accounts")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_list)

    for verb, text in (("disable", "disable an account (its labels stay)"), ("enable", "enable an account again")):
        q = verbs.add_parser(verb, parents=parents, help=text)
        q.add_argument("name")
        q.set_defaults(handler=cmd_disable, disable=verb == "disable")

    q = verbs.add_parser("password", parents=parents, help="set an account's password (admins only)")
    q.add_argument("name")
    _password_options(q, optional_account=False)
    q.set_defaults(handler=cmd_password)

    q = verbs.add_parser("role", parents=parents, help="change an account's role (admins only)")
    q.add_argument("name")
    q.add_argument("role", choices=ROLES)
    q.set_defaults(handler=cmd_role)


def _password_options(parser: argparse.ArgumentParser, optional_account: bool = True) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--password-file", type=Path, help="read the password from the first line of this file")
    if optional_account:
        group.add_argument("--no-password", action="store_true",
                           help="an account for the CLI only: it cannot log into the app")


def _read_password(args: argparse.Namespace) -> str | None:
    if getattr(args, "no_password", False):
        return None
    if args.password_file is not None:
        try:
            return args.password_file.read_text().splitlines()[0]
        except (OSError, IndexError):
            raise UsageError(f"cannot read a password from {args.password_file}") from None
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for a password: use --password-file FILE (or --no-password)")
    first, second = getpass.getpass("password: "), getpass.getpass("again: ")
    if first != second:
        raise UsageError("the two passwords differ")
    return first


def _store(args: argparse.Namespace):
    return store_from_args(args)


def cmd_add(args: argparse.Namespace) -> int:
    password = _read_password(args)
    with _store(args).sessions.begin() as session:
        actor = acting_user(session, args, "users")
        try:
            user = add_user(session, actor, args.name, args.role, password)
        except AccountError as error:
            raise UsageError(str(error)) from None
        print(f"user {user.name!r} added as {user.role}" + ("" if password else " (CLI only: no password)"))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with store_from_args(args, read=True).sessions.begin() as session:
        rows = [{"name": u.name, "role": u.role, "disabled": u.disabled, "can_log_in": u.password_hash is not None,
                 "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None}
                for u in list_users(session)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        flags = ", ".join(f for f, on in (("disabled", row["disabled"]), ("CLI only", not row["can_log_in"])) if on)
        print(f"{row['name']:24s} {row['role']:10s} {flags}")
    return 0


def _target(session, name: str):
    from db.users import find_user

    user = find_user(session, name)
    if user is None:
        raise UsageError(f"no user named {name!r}")
    return user


def cmd_disable(args: argparse.Namespace) -> int:
    with _store(args).sessions.begin() as session:
        actor = acting_user(session, args, "users")
        try:
            set_disabled(session, actor, _target(session, args.name), args.disable)
        except AccountError as error:
            raise UsageError(str(error)) from None
    print(f"user {args.name!r} {'disabled' if args.disable else 'enabled'}")
    return 0


def cmd_password(args: argparse.Namespace) -> int:
    password = _read_password(args)
    with _store(args).sessions.begin() as session:
        actor = acting_user(session, args, "users")
        try:
            set_password(session, actor, _target(session, args.name), password or "", trusted=True)
        except AccountError as error:
            raise UsageError(str(error)) from None
    print(f"password of {args.name!r} changed")
    return 0


def cmd_role(args: argparse.Namespace) -> int:
    with _store(args).sessions.begin() as session:
        actor = acting_user(session, args, "users")
        set_role(session, actor, _target(session, args.name), args.role)
    print(f"user {args.name!r} is now {args.role}")
    return 0
