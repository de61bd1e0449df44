"""The schema revisions this rtrec knows and the one a database is at, without Alembic.

Reading commands and the dashboard only compare two revision ids; Alembic's machinery (a third
of a second to import) is for the commands that migrate.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from sqlalchemy import Connection, inspect, text

VERSIONS_DIR = Path(__file__).parent / "migrations" / "versions"
VERSION_TABLE = "alembic_version"  # Alembic's own bookkeeping table
# Each revision file names itself and its parent at module level, as Alembic's template writes.
_REVISION = re.compile(r'^revision(?::[^=]*)?=\s*["\'](\w+)["\']', re.MULTILINE)
_PARENT = re.compile(r'^down_revision(?::[^=]*)?=\s*(?:["\'](\w+)["\']|None)', re.MULTILINE)


@functools.cache
def revision_parents() -> dict[str, str | None]:
    """Every known revision and the one it follows (None for the first)."""
    parents: dict[str, str | None] = {}
    for path in sorted(VERSIONS_DIR.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        revision, parent = _REVISION.search(source), _PARENT.search(source)
        if revision is None or parent is None:
            raise RuntimeError(f"{path.name} names no revision or down_revision")
        parents[revision.group(1)] = parent.group(1)
    return parents


def known_revisions() -> frozenset[str]:
    return frozenset(revision_parents())


def head() -> str | None:
    """The newest revision: the one no other revision follows (the history is one line)."""
    parents = revision_parents()
    heads = set(parents) - set(parents.values())
    if len(heads) > 1:
        raise RuntimeError(f"the migrations have more than one head: {sorted(heads)}")
    return next(iter(heads), None)


def database_revision(connection: Connection) -> str | None:
    """The revision stamped in the database, or None when it has none (an empty database)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    stamped = sorted(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    # Several rows would be branches, which rtrec never makes: shown as one unknown revision.
    return ",".join(stamped) or None
