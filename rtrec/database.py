"""The command line's edge to the database: read-only connections and session ids from prefixes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import Connection

from rtrec.errors import CommandError
from storage import browse
from storage.db import open_for_reading


@contextlib.contextmanager
def reading(url: str) -> Iterator[Connection]:
    """A read-only connection to `url`, refused (one line) unless its schema is at head."""
    engine = open_for_reading(url)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def session_id(connection: Connection, prefix: str) -> str:
    """The one session whose id is or starts with `prefix`; every command taking an id asks here."""
    matches = browse.session_ids_starting(connection, prefix) if prefix else []
    if not matches:
        raise CommandError(f"no session {prefix!r} in the database")
    if len(matches) > 1:
        raise CommandError(f"{prefix!r} starts more than one session id: give more of it")
    return matches[0]
