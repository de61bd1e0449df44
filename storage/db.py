"""Engines and schema upgrades: the one place that knows how to open each kind of database."""

from __future__ import annotations

import errno
import logging
import os
import re
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import ConnectionPoolEntry

from storage.sanitize import json_text

logger = logging.getLogger(__name__)

DEFAULT_DB_URL = "sqlite:///rtrec.db"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000  # how long a SQLite write waits for another writer's lock


class DatabaseURLError(ValueError):
    """The database URL cannot be used (bad syntax, unknown driver, missing file)."""


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


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for `url`; SQLite files get WAL mode, read-only engines refuse writes."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        reason = str(exc).replace(url, masked_url(url))
        raise DatabaseURLError(f"invalid database URL {masked_url(url)!r}: {reason}") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            path = Path(database)
            if read_only and not path.exists():
                raise DatabaseURLError(f"database file {database} does not exist")
            if not read_only:
                _check_writable(path)
        engine = create_engine(parsed, json_serializer=json_text, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_read_only if read_only else _sqlite_pragmas)
        return engine
    shown = masked_url(repr(parsed))
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
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest revision this version of rtrec knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
