"""`rtrec prune`: delete old sessions (with all under them), old calls no session watches any more
and old failed connection attempts."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rtrec.settings import DB, add_settings, non_negative_int

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

PRUNE_BATCH = 200


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "prune", help="delete old sessions with everything under them"
    )
    parser.add_argument(
        "--older-than",
        type=non_negative_int,
        required=True,
        metavar="DAYS",
        help="sessions started more than DAYS ago (0: all)",
    )
    add_settings(parser, [DB])
    return parser


def run(args: argparse.Namespace) -> int:
    from storage.db import open_for_writing

    # Deleting is no reason to migrate: a schema behind head is refused, `rtrec db upgrade` named.
    engine = open_for_writing(args.db, migrate=False)
    try:
        _prune(engine, args.older_than)
    finally:
        engine.dispose()
    return 0


def _prune(engine: Engine, older_than_days: int) -> None:
    from rtrec.progress import progress
    from storage import prune

    cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
    with engine.connect() as connection:
        total = prune.count_sessions_started_before(connection, cutoff)
    show = progress("deleted sessions", total)
    _in_batches(
        engine,
        lambda connection: prune.prune_sessions(connection, cutoff, PRUNE_BATCH),
        None if show is None else lambda done: show(min(done, total)),
    )
    gone = _in_batches(
        engine, lambda connection: prune.prune_calls(connection, cutoff, PRUNE_BATCH)
    )
    failures = _in_batches(
        engine, lambda connection: prune.prune_upgrade_failures(connection, cutoff, PRUNE_BATCH)
    )
    with engine.connect() as connection:
        deleted = total - prune.count_sessions_started_before(connection, cutoff)
    print(
        f"deleted {deleted} session(s), {gone} call(s) and {failures} failed connection "
        f"attempt(s) before {cutoff.isoformat(timespec='seconds')}"
    )


def _in_batches(
    engine: Engine,
    delete: Callable[[Connection], int],
    progressed: Callable[[int], None] | None = None,
) -> int:
    """Run `delete` (at most PRUNE_BATCH rows) until a batch comes back short: one short
    transaction per batch, so writers keep going. How many rows it deleted in all."""
    deleted, batch = 0, PRUNE_BATCH
    while batch == PRUNE_BATCH:
        with engine.begin() as connection:
            batch = delete(connection)
        deleted += batch
        if progressed is not None:
            progressed(deleted)
    return deleted
