"""Command-line entry: one argparse tree; each command group lives in its own module."""
from __future__ import annotations

import argparse
import logging
import sys

from db.config import StoreConfig
from engine.cli import (
    bench_commands,
    data_commands,
    errors,
    job_commands,
    model_commands,
    reader_commands,
    settings_commands,
    train_commands,
    user_commands,
)
from engine.cli.common import UsageError, common_parser
from engine.data.library_logs import route_library_logs

COMMAND_GROUPS = [data_commands, job_commands, train_commands, model_commands, settings_commands, user_commands,
                  reader_commands, bench_commands]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine",
                                     description="MedSSL Studio engine: import, status, training, analysis.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parents = [common_parser()]
    for group in COMMAND_GROUPS:
        group.register(subparsers, parents)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    route_library_logs(StoreConfig.from_env(home=getattr(args, "home", None)).logs_dir)
    try:
        return int(args.handler(args) or 0)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - one line on the console, the traceback in logs/
        return errors.report(getattr(args, "home", None), error)
