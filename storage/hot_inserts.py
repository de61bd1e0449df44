"""The hottest inserts (events and audio segments) straight to the driver, past SQLAlchemy Core.

SQLAlchemy's per-row parameter handling cost more than the database's own work on these tables:
SQLite gets one prepared statement and `executemany`, PostgreSQL a `COPY` per table (rows as
the driver streams them, no statement per row nor arrays to quote). Both stay idempotent: SQLite
skips stored rows with `ON CONFLICT DO NOTHING`; a PostgreSQL `COPY` that meets a stored row
fails whole, inside a savepoint, and the batch goes again through `INSERT ... ON CONFLICT DO
NOTHING` (rare: only a batch retried after a lost commit acknowledgement meets its own rows).
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pybase64
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from storage import models
from storage.records import EventRecord
from storage.sanitize import json_bytes, json_text

if TYPE_CHECKING:  # psycopg is imported by the PostgreSQL dialect, only when it is used
    from psycopg import Cursor

_ZERO = timedelta(0)
_UNIQUE_VIOLATION = "23505"  # PostgreSQL's SQLSTATE

# Column names come from our own models, never from input.
# In the order `_event_tuples` builds them (a test checks they are the table's).
EVENT_COLUMNS = (
    "session_id",
    "seq",
    "ts",
    "direction",
    "type",
    "event_id",
    "response_id",
    "item_id",
    "size_bytes",
    "payload",
    "error_type",
    "error_code",
)
AUDIO_COLUMNS = tuple(c.name for c in models.table(models.AudioChunk).columns if c.name != "id")
_AUDIO_TS = AUDIO_COLUMNS.index("ts")


def decode_audio(text: str) -> bytes | None:
    """The bytes of base64 `text`, None unless it is valid. pybase64 (SIMD) decodes ~8x faster;
    the stdlib's strict mode has the last word, as it also takes padding past a full quantum."""
    try:
        return pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pass
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        return None


# The text of the last second `sqlite_datetime` formatted, keyed by its fields: events come many
# a second, and an aware datetime's whole isoformat (its offset too) took ~1.1 µs, the kept
# second and the microseconds ~0.7. One tuple, replaced whole: no thread reads half of it.
_last_second: tuple[tuple[int, ...], str] = ((), "")


def sqlite_datetime(value: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime type stores (UTC, no offset)."""
    global _last_second
    if value.tzinfo is UTC:  # what the recorder makes
        second = (value.second, value.minute, value.hour, value.day, value.month, value.year)
        key, text = _last_second
        if key != second:
            text = value.isoformat(" ", "seconds")[:19]
            _last_second = second, text
        return f"{text}.{value.microsecond:06d}"
    if value.tzinfo is not None:
        if value.utcoffset() != _ZERO:
            value = value.astimezone(UTC)
        value = value.replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


def _event_tuples(
    records: Sequence[EventRecord],
    ts: Callable[[datetime], Any],
    payload: Callable[[Any], Any] = json_text,
) -> list[Any]:
    return [
        (
            r.session_id,
            r.seq,
            ts(r.ts),
            r.direction,
            r.type,
            r.event_id,
            r.response_id,
            r.item_id,
            r.size_bytes,
            None if r.payload is None else payload(r.payload),
            r.error_type,
            r.error_code,
        )
        for r in records
    ]


def _audio_tuples(segments: Sequence[dict[str, Any]], ts: Callable[[datetime], Any]) -> list[Any]:
    rows: list[tuple[Any, ...]] = []
    for segment in segments:
        row = [segment[name] for name in AUDIO_COLUMNS]
        row[_AUDIO_TS] = ts(row[_AUDIO_TS])
        rows.append(tuple(row))
    return rows


def _same(value: datetime) -> datetime:
    return value


def _sqlite_insert(table: str, columns: Sequence[str]) -> str:
    return "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING".format(  # noqa: S608
        table, ", ".join(columns), ", ".join("?" for _ in columns)
    )


_SQLITE_EVENT_INSERT = _sqlite_insert("events", EVENT_COLUMNS)
_SQLITE_AUDIO_INSERT = _sqlite_insert("audio_chunks", AUDIO_COLUMNS)


def _insert_events_sqlite(connection: Connection, records: Sequence[EventRecord]) -> None:
    connection.exec_driver_sql(_SQLITE_EVENT_INSERT, _event_tuples(records, sqlite_datetime))


def _insert_audio_sqlite(connection: Connection, segments: Sequence[dict[str, Any]]) -> None:
    connection.exec_driver_sql(_SQLITE_AUDIO_INSERT, _audio_tuples(segments, sqlite_datetime))


# The fallback of a COPY that met stored rows: one statement per batch, each column one array.
_POSTGRESQL_TYPES = {"ts": "timestamptz", "payload": "jsonb", "seq": "int", "size_bytes": "int"}
_POSTGRESQL_EVENT_INSERT = (
    "INSERT INTO events ({}) SELECT * FROM unnest({}) ON CONFLICT DO NOTHING".format(  # noqa: S608
        ", ".join(EVENT_COLUMNS),
        ", ".join(f"%s::{_POSTGRESQL_TYPES.get(name, 'text')}[]" for name in EVENT_COLUMNS),
    )
)
_POSTGRESQL_AUDIO_INSERT = (
    "INSERT INTO audio_chunks ({}) VALUES ({}) ON CONFLICT DO NOTHING".format(  # noqa: S608
        ", ".join(AUDIO_COLUMNS), ", ".join("%s" for _ in AUDIO_COLUMNS)
    )
)
# Audio goes in COPY's binary format: the text format would send every byte as two hex digits.
_AUDIO_BINARY_TYPES = {"seq": "int4", "ts": "timestamptz", "sample_rate": "int4"}
_AUDIO_BINARY_TYPES |= {"last_seq": "int4", "data": "bytea"}
_POSTGRESQL_AUDIO_COPY = "COPY audio_chunks ({}) FROM STDIN (FORMAT BINARY)".format(
    ", ".join(AUDIO_COLUMNS)
)
_POSTGRESQL_EVENT_COPY = "COPY events ({}) FROM STDIN (FORMAT BINARY)".format(
    ", ".join(EVENT_COLUMNS)
)
# Events in the binary format too: no escaping of the payload's text on either side. jsonb's
# binary form is a version byte (1) and the JSON text, written here as raw bytes.
_EVENT_BINARY_TYPES = {"seq": "int4", "ts": "timestamptz", "size_bytes": "int4"}
_EVENT_BINARY_TYPES["payload"] = "bytea"
_EVENT_TYPES = [_EVENT_BINARY_TYPES.get(name, "text") for name in EVENT_COLUMNS]
_JSONB_VERSION = b"\x01"


def _driver_cursor(connection: Connection) -> Cursor[Any]:
    cursor: Cursor[Any] = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    return cursor


def _copy(connection: Connection, statement: str, rows: list[Any], types: Sequence[str]) -> None:
    """COPY `rows` in; the driver's errors become SQLAlchemy's, as the writer expects (an
    `OperationalError` is retried, others go record by record)."""
    dbapi_error = connection.dialect.loaded_dbapi.Error
    try:
        with _driver_cursor(connection) as cursor, cursor.copy(statement) as copy:
            if types:
                copy.set_types(types)
            for row in rows:
                copy.write_row(row)
    except dbapi_error as exc:
        raise DBAPIError.instance(statement, None, exc, dbapi_error) from exc


def _copy_or_insert(
    connection: Connection, copy: Callable[[], None], insert: Callable[[], None]
) -> None:
    """`copy`, in a savepoint; if it met a row stored already, `insert` (which skips those)."""
    try:
        with connection.begin_nested():
            copy()
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) != _UNIQUE_VIOLATION:
            raise
        insert()


def _jsonb_binary(payload: Any) -> bytes:
    """`payload` as jsonb's binary input takes it."""
    return _JSONB_VERSION + json_bytes(payload)


def _insert_events_postgresql(connection: Connection, records: Sequence[EventRecord]) -> None:
    def copy() -> None:
        rows = _event_tuples(records, _same, _jsonb_binary)
        _copy(connection, _POSTGRESQL_EVENT_COPY, rows, _EVENT_TYPES)

    def insert() -> None:
        rows = _event_tuples(records, _same)
        columns = tuple(list(column) for column in zip(*rows, strict=True))
        connection.exec_driver_sql(_POSTGRESQL_EVENT_INSERT, columns)

    _copy_or_insert(connection, copy, insert)


def _insert_audio_postgresql(connection: Connection, segments: Sequence[dict[str, Any]]) -> None:
    rows = _audio_tuples(segments, _same)
    types = [_AUDIO_BINARY_TYPES.get(name, "text") for name in AUDIO_COLUMNS]

    def insert() -> None:
        connection.exec_driver_sql(_POSTGRESQL_AUDIO_INSERT, rows)

    _copy_or_insert(
        connection, lambda: _copy(connection, _POSTGRESQL_AUDIO_COPY, rows, types), insert
    )


EVENT_INSERTS: dict[str, Callable[[Connection, Sequence[EventRecord]], None]] = {
    "sqlite": _insert_events_sqlite,
    "postgresql": _insert_events_postgresql,
}
AUDIO_INSERTS: dict[str, Callable[[Connection, Sequence[dict[str, Any]]], None]] = {
    "sqlite": _insert_audio_sqlite,
    "postgresql": _insert_audio_postgresql,
}
