"""Engines and schema upgrades: the one place that knows how to open each kind of database.

Programs open a database through `open_for_writing` (the recorder, `rtrec up`/`demo`/`replay`,
`rtrec db upgrade`, `rtrec prune`) or `open_for_reading` (the dashboard and the reading commands);
both raise `DatabaseOpenError`, whose message is one line naming what is wrong, password masked.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from handover.db_url import database_url
from storage import revisions
from storage.sanitize import json_text

if TYPE_CHECKING:  # Alembic is imported by the commands that migrate, not by every reader
    from alembic.config import Config

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000  # how long a SQLite write waits for another writer's lock


class DatabaseOpenError(Exception):
    """The database cannot be used as asked; the message is one line, any password masked."""


class DatabaseURLError(DatabaseOpenError, ValueError):
    """The database URL cannot be used (bad syntax, unknown driver, missing or unwritable file),
    found before any connection is made."""


def _check_writable(path: Path) -> None:
    """Say why a SQLite file cannot be written, before SQLite's vague "unable to open"."""
    if not path.parent.exists():
        raise DatabaseURLError(f"directory {path.parent} for the database does not exist")
    target = path if path.exists() else path.parent
    if os.statvfs(target).f_flag & os.ST_RDONLY:
        raise DatabaseURLError(f"database {path}: {os.strerror(errno.EROFS)}")
    if path.is_dir():
        raise DatabaseURLError(f"database {path} is a directory")
    if not os.access(target, os.W_OK):
        raise DatabaseURLError(f"database {path}: {os.strerror(errno.EACCES)}")


def error_reason(exc: BaseException) -> str:
    """The error's class and the first line of the driver's message: never the SQL, its
    parameters (recorded content) or PostgreSQL's DETAIL/CONTEXT lines, which quote the data."""
    error = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


SQLITE_CACHE_KIB = 8192
SQLITE_CHECKPOINT_PAGES = 4000


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the dashboard read while the writer commits; NORMAL is durable across crashes in WAL.
    # 16 KiB pages for a new file (a no-op on an existing one): audio blobs span a quarter of the
    # pages they would at 4 KiB; the writer measured 1.3x the voice events per second with it.
    cursor.execute("PRAGMA page_size=16384")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # 8 MiB of page cache instead of 2: a batch's audio no longer pushes the indexes' pages out
    # mid-transaction, to be read back (a third of the reads and writes of the writer benchmark).
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    # A checkpoint every 4,000 pages (64 MiB of WAL at 16 KiB) instead of 1,000: each index page
    # goes into the file once per checkpoint however often it changed, so fewer checkpoints write
    # less (writer benchmark: 6,350 -> 6,110 bytes per voice event). The recorder's writer has a
    # thread that checkpoints every 8 MiB it commits (storage/checkpointer.py): this is the net
    # for it and what every other program's writes get (the -wal file up to ~64 MiB on disk).
    cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")
    cursor.close()


def _sqlite_read_only(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def masked_url(url: str) -> str:
    """`url` as it may be shown: the password (after `//user:`, up to the last `@`, or a
    `password=` query parameter) replaced by `***`, however broken the rest of the URL is."""
    url = re.sub(r"(//[^:/@]*:).*@" if "//" in url else r"(:)\S*@", r"\1***@", url)
    return re.sub(r"(?i)(password=)[^&]*", r"\1***", url)


def make_engine(url: str, *, read_only: bool = False, must_exist: bool = False) -> Engine:
    """An engine for `url`; SQLite files get WAL mode, read-only engines refuse writes.
    A missing SQLite file is refused when read-only or `must_exist`, else created on connect."""
    url = database_url(url)  # every --db and RTREC_DB comes through here: a bare path is SQLite
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        reason = str(exc).replace(url, masked_url(url))
        raise DatabaseURLError(f"invalid database URL {masked_url(url)!r}: {reason}") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            path = Path(database)
            if (read_only or must_exist) and not path.exists():
                raise DatabaseURLError(f"database file {database} does not exist")
            if not read_only:
                _check_writable(path)
        engine = create_engine(parsed, json_serializer=json_text, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_read_only if read_only else _sqlite_pragmas)
        return engine
    shown = shown_url(parsed)
    connect_args: dict[str, Any] = {}
    if read_only and parsed.get_backend_name() == "postgresql":
        connect_args["options"] = "-c default_transaction_read_only=on"
    try:
        # hide_parameters: error messages never carry SQL parameters, i.e. recorded content.
        return create_engine(
            parsed,
            pool_pre_ping=True,
            connect_args=connect_args,
            json_serializer=json_text,
            hide_parameters=True,
        )
    except ImportError as exc:
        hint = (
            "; rtrec ships psycopg: use postgresql+psycopg://user:password@host/db"
            if parsed.get_backend_name() == "postgresql"
            else ""
        )
        raise DatabaseURLError(
            f"cannot open database URL {shown}: its driver is not installed ({exc}){hint}"
        ) from exc
    except ArgumentError as exc:
        raise DatabaseURLError(f"cannot open database URL {shown}: {exc}") from exc


def alembic_config() -> Config:
    """Alembic configuration pointing at the packaged migrations (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


# Any constant shared by every rtrec process: serializes migrations across proxies.
MIGRATION_LOCK_KEY = 0x72747265  # "rtre"


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`; the only way tables are ever created.

    Processes that start together take turns: the first migrates, the others find the schema
    current. PostgreSQL: a transaction-level advisory lock. SQLite: the migration runs inside
    `BEGIN EXCLUSIVE` (pysqlite would otherwise run DDL outside any transaction).
    """
    from alembic import command

    config = alembic_config()
    if engine.dialect.name == "sqlite":
        _upgrade_sqlite(engine, config, revision)
        return
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _upgrade_sqlite(engine: Engine, config: Config, revision: str) -> None:
    from alembic import command

    # AUTOCOMMIT hands transaction control to us; SQLite's own lock then serializes processes
    # without any extra file (closing another handle would drop this process's SQLite locks).
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("BEGIN EXCLUSIVE")
        try:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        except BaseException:
            connection.exec_driver_sql("ROLLBACK")
            raise
        connection.exec_driver_sql("COMMIT")


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at, or None for an empty database."""
    with engine.connect() as connection:
        return revisions.database_revision(connection)


def head_revision() -> str | None:
    """The newest revision this version of rtrec knows."""
    return revisions.head()


# ----------------------------------------------------------------------------- opening


def database_problem(url: str | URL, exc: BaseException, doing: str = "cannot use") -> str:
    """What went wrong with the database at `url` in one line: `doing` (e.g. "cannot read"),
    the URL without its password and the driver's own words, never SQL or its parameters."""
    orig = getattr(exc, "orig", None)
    if orig is not None:  # the driver's message; psycopg's spans lines (a hint on the next)
        reason = "; ".join(line.strip() for line in str(orig).splitlines() if line.strip())
    else:  # SQLAlchemy's and Alembic's own: the first line, not the SQL or the help link after
        reason = next(iter(str(exc).strip().splitlines()), "")
    reason = reason or exc.__class__.__name__
    try:
        parsed = make_url(database_url(url) if isinstance(url, str) else url)
    except (ArgumentError, ValueError):
        return f"{doing} {masked_url(str(url))}: {reason}"
    if parsed.get_backend_name() == "sqlite" and "not a database" in reason:
        return f"{parsed.database} is not an SQLite database"
    return f"{doing} {shown_url(parsed)}: {reason}"


def shown_url(url: URL) -> str:
    """`url` as it may be shown or logged: its password masked, in the userinfo and in the query
    (`?password=`, which SQLAlchemy's `hide_password` leaves as it is)."""
    return masked_url(url.render_as_string(hide_password=True))


def _connected(engine: Engine) -> None:
    """Connect once, so an unreachable server or a file that is no database is named as such."""
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as exc:
        raise DatabaseOpenError(database_problem(engine.url, exc, "cannot connect to")) from exc


def _revision(engine: Engine) -> str | None:
    try:
        return current_revision(engine)
    except SQLAlchemyError as exc:
        raise DatabaseOpenError(database_problem(engine.url, exc, "cannot read")) from exc


def _refuse_unknown(engine: Engine, revision: str | None) -> None:
    if revision is not None and revision not in revisions.known_revisions():
        raise DatabaseOpenError(
            f"the database {shown_url(engine.url)} is at schema {revision}, which this rtrec does "
            "not know (a newer rtrec wrote it): upgrade rtrec"
        )


def check_schema(engine: Engine) -> None:
    """Raise `DatabaseOpenError` unless the database is readable and its schema is at head.
    Long-lived readers (the dashboard) call it again to notice a database that changed."""
    where = shown_url(engine.url)
    revision = _revision(engine)
    _refuse_unknown(engine, revision)
    if revision is None:
        raise DatabaseOpenError(
            f"no rtrec database at {where}: "
            f"run `uv run rtrec db upgrade --db {where}` to create one"
        )
    if revision != head_revision():
        raise DatabaseOpenError(
            f"the database {where} is at schema {revision}, and this rtrec needs "
            f"{head_revision()}: run `uv run rtrec db upgrade --db {where}`"
        )


def _opened(engine: Engine, steps: Callable[[Engine], None]) -> Engine:
    """`engine` once `steps(engine)` passed; disposed (no pooled connection left) if not."""
    try:
        steps(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def open_for_writing(url: str, *, migrate: bool = True) -> Engine:
    """An engine that writes to `url`, its schema brought to head (created in an empty database).

    `migrate=False` leaves the schema alone and refuses one not at head (`rtrec prune` deletes
    rows: it must not upgrade a database behind the user's back).
    """

    def prepare(engine: Engine) -> None:
        _connected(engine)
        if not migrate:
            check_schema(engine)
            return
        from alembic.util import CommandError

        _refuse_unknown(engine, _revision(engine))
        try:
            upgrade(engine)
        except (SQLAlchemyError, CommandError) as exc:
            doing = "cannot upgrade the schema of"
            raise DatabaseOpenError(database_problem(engine.url, exc, doing)) from exc

    # Without migrating there is nothing to create: a missing SQLite file is named, not made.
    return _opened(make_engine(url, must_exist=not migrate), prepare)


def open_for_reading(url: str) -> Engine:
    """A read-only engine on `url`, whose schema is checked to be the one this rtrec reads."""

    def prepare(engine: Engine) -> None:
        _connected(engine)
        check_schema(engine)

    engine = _opened(make_engine(url, read_only=True), prepare)
    if engine.dialect.name == "postgresql":  # also per transaction; SQLite refuses writes already
        return engine.execution_options(postgresql_readonly=True)
    return engine
