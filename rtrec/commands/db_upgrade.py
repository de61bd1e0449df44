"""`rtrec db upgrade`: run the schema migrations."""

from __future__ import annotations

import argparse
from typing import Any

from rtrec.settings import DB, add_settings


def add_parser(commands: Any) -> argparse.ArgumentParser:
    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(
        dest="db_command", required=True, metavar="COMMAND", parser_class=type(db)
    )
    parser: argparse.ArgumentParser = db_commands.add_parser(
        "upgrade", help="run schema migrations"
    )
    add_settings(parser, [DB])
    return parser


def run(args: argparse.Namespace) -> int:
    from storage.db import current_revision, open_for_writing

    engine = open_for_writing(args.db)
    try:
        print(f"database at schema {current_revision(engine)}")
    finally:
        engine.dispose()
    return 0
