"""`rtrec sessions`: the recorded sessions, newest first, as a table or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from rtrec.settings import DB, add_settings, positive_int


def property_filter(text: str) -> tuple[str, str]:
    """`customer=acme` -> ("customer", "acme"), the name spelt as the proxy stores it."""
    from handover.properties import property_name

    raw_name, equals, value = text.partition("=")
    name = property_name(raw_name)
    if not equals or name is None:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "sessions", help="list recorded sessions, newest first"
    )
    add_settings(parser, [DB])
    parser.add_argument("--json", action="store_true", help="one JSON array of objects")
    parser.add_argument("--limit", type=positive_int, default=50, help="at most this many")
    parser.add_argument(
        "--property",
        type=property_filter,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="only sessions tagged with this property (repeatable: all must match)",
    )
    return parser


def json_value(value: Any) -> Any:
    """A value as JSON has it: times in ISO 8601 with their UTC offset."""
    if isinstance(value, datetime):
        return (value.replace(tzinfo=UTC) if value.tzinfo is None else value).isoformat()
    return value


def run(args: argparse.Namespace) -> int:
    from rtrec.database import reading
    from storage import browse, overview

    with reading(args.db) as connection:
        rows = browse.list_sessions(connection, args.limit, args.property)
        failures = [] if rows else overview.upgrade_failures(connection, None, None, limit=1)
    if args.json:
        print(json.dumps([{k: json_value(v) for k, v in row.items()} for row in rows], indent=2))
        return 0
    if not rows:
        _explain_empty(failures)
        return 0
    from rtrec.listing import print_table, sessions_table

    print_table(lambda short: sessions_table(rows, short), sys.stdout)
    return 0


def _explain_empty(failures: list[dict[str, Any]]) -> None:
    from rtrec.listing import timestamp

    print("no sessions recorded yet: point a client at `uv run rtrec proxy`")
    if failures:  # the likeliest reason there are none
        last = failures[0]
        print(
            f"the last connection attempt failed ({timestamp(last['ts'])}, "
            f"HTTP {last['status']}): "
            f"{last['reason'] or 'refused by the upstream'}; the dashboard lists them all"
        )
