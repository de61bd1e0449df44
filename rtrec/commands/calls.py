"""`rtrec calls`: the WebRTC and SIP calls recorded, newest first, as a table or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rtrec.commands.sessions import json_value
from rtrec.settings import DB, add_settings, positive_int


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "calls", help="list recorded WebRTC and SIP calls, newest first"
    )
    add_settings(parser, [DB])
    parser.add_argument("--json", action="store_true", help="one JSON array of objects")
    parser.add_argument("--limit", type=positive_int, default=50, help="at most this many")
    return parser


def run(args: argparse.Namespace) -> int:
    from rtrec.database import reading
    from storage import calls

    with reading(args.db) as connection:
        rows = calls.list_calls(connection, args.limit)
    if args.json:
        print(json.dumps([{k: json_value(v) for k, v in row.items()} for row in rows], indent=2))
        return 0
    if not rows:
        print("no calls recorded yet: their requests (`/v1/realtime/calls`, `…/accept`) go")
        print("through `uv run rtrec proxy` like any other; see the README's calls section")
        return 0
    from rtrec.listing import calls_table, print_table

    print_table(lambda short: calls_table(rows, short), sys.stdout)
    return 0
