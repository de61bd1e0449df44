"""Records to rows: one idempotent transaction per batch, the writer thread's database work."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from operator import attrgetter
from typing import Any

from sqlalchemy import Connection, Insert, Table, Update, bindparam, insert, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from storage import audio_segments, models
from storage.hot_inserts import AUDIO_INSERTS, EVENT_INSERTS, decode_audio
from storage.records import (
    AudioRecord,
    CallChanged,
    CallEventRecord,
    CallSeen,
    EventRecord,
    RateLimitRecord,
    Record,
    ResponseCreated,
    ResponseDone,
    SessionChanged,
    SessionClosed,
    SessionOpened,
    SessionUsageChanged,
    TranscriptionRecord,
    UpgradeFailed,
)

logger = logging.getLogger(__name__)


_FIELDS: dict[type, tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]] = {}


def _row(record: Any) -> dict[str, Any]:
    fields = _FIELDS.get(type(record))
    if fields is None:
        names = tuple(field.name for field in dataclasses.fields(record))
        fields = _FIELDS[type(record)] = (names, attrgetter(*names))
    names, values = fields
    return dict(zip(names, values(record), strict=True))


def _decoded(records: Sequence[AudioRecord]) -> Iterator[tuple[AudioRecord, bytes]]:
    """Each record with its audio's bytes; one whose text is not base64 is logged and left out."""
    for record in records:
        data = decode_audio(record.audio_base64)
        if data is None:
            logger.warning(
                "audio of event %d in session %s is not valid base64", record.seq, record.session_id
            )
            continue
        yield record, data


def _session_row(record: SessionOpened) -> dict[str, Any]:
    row = _row(record)
    del row["properties"]  # rows of their own, see _insert_properties
    return row


def _insert_properties(connection: Connection, sessions: Sequence[SessionOpened]) -> None:
    rows = [
        {"session_id": record.id, "name": name, "value": value}
        for record in sessions
        for name, value in record.properties
    ]
    if rows:
        connection.execute(_insert_new(connection, models.table(models.SessionProperty)), rows)


_INSERTS: dict[type, tuple[Table, Callable[[Any], dict[str, Any]]]] = {
    SessionOpened: (models.table(models.RealtimeSession), _session_row),
    EventRecord: (models.table(models.Event), _row),
    ResponseCreated: (models.table(models.Response), _row),
    RateLimitRecord: (models.table(models.RateLimit), _row),
    TranscriptionRecord: (models.table(models.Transcription), _row),
    AudioRecord: (models.table(models.AudioChunk), _row),  # merged into segments instead
    UpgradeFailed: (models.table(models.UpgradeFailure), _row),
    CallSeen: (models.table(models.Call), _row),  # before its events, which refer to it
    CallEventRecord: (models.table(models.CallEvent), _row),
}


def with_natural_keys(records: Sequence[Record]) -> list[Record]:
    """`records` with the natural keys of rate limits and transcriptions filled in: the `seq` of
    the event before them (each message's records follow its event) and their place after it."""
    keyed: list[Record] = []
    seq: int | None = None
    position = 0
    for record in records:
        if isinstance(record, EventRecord):
            seq, position = record.seq, 0
        elif isinstance(record, RateLimitRecord) and record.seq is None:
            record = dataclasses.replace(record, seq=seq, position=position)
            position += 1
        elif isinstance(record, TranscriptionRecord) and record.seq is None:
            record = dataclasses.replace(record, seq=seq)
        keyed.append(record)
    return keyed


def _insert_new(connection: Connection, target: Table) -> Insert:
    """An INSERT that skips rows whose natural key is stored already: a batch retried after a
    commit whose acknowledgement was lost must neither store rows twice nor fail."""
    dialect = connection.dialect.name
    if dialect == "sqlite":
        return sqlite_insert(target).on_conflict_do_nothing()
    if dialect == "postgresql":
        return postgresql_insert(target).on_conflict_do_nothing()
    return insert(target)


def apply_records(connection: Connection, records: Sequence[Record]) -> None:
    """Write `records` in one transaction: inserts first (sessions before what refers to them).
    Idempotent: applying the same records again changes nothing."""
    inserts: dict[type, list[Any]] = {kind: [] for kind in _INSERTS}
    updates: list[Record] = []
    for record in with_natural_keys(records):
        kind = type(record)
        if kind not in _INSERTS:
            updates.append(record)
        else:
            inserts[kind].append(record)
    for kind, batch in inserts.items():
        if not batch:
            continue
        dialect = connection.dialect.name
        if kind is EventRecord and dialect in EVENT_INSERTS:
            EVENT_INSERTS[dialect](connection, batch)
            continue
        target, to_row = _INSERTS[kind]
        if kind is AudioRecord:
            rows = audio_segments.merge_base64(batch) or audio_segments.merge(_decoded(batch))
        else:
            rows = [to_row(record) for record in batch]
        if rows and kind is AudioRecord and dialect in AUDIO_INSERTS:
            AUDIO_INSERTS[dialect](connection, rows)
        elif rows:
            connection.execute(_insert_new(connection, target), rows)
        if kind is SessionOpened:
            _insert_properties(connection, batch)
    done = [record for record in updates if type(record) is ResponseDone]
    if done and _batchable(done):
        _apply_responses_done(connection, done)
        updates = [record for record in updates if type(record) is not ResponseDone]
    for record in updates:
        _apply_update(connection, record)


@cache
def _update_by(table_name: str, *keys: str) -> Update:
    """UPDATE of the row with the given key columns (bound as `key_<name>`); the SET clause
    comes from the other parameters, so one cached statement serves every update of a table."""
    target = models.Base.metadata.tables[table_name]
    return update(target).where(*(target.c[key] == bindparam(f"key_{key}") for key in keys))


def _apply_update(connection: Connection, record: Record) -> None:
    if isinstance(record, SessionChanged):
        values = {
            k: v
            for k, v in (("model", record.model), ("openai_session_id", record.openai_session_id))
            if v is not None
        }
        if values:
            connection.execute(_update_by("sessions", "id"), {**values, "key_id": record.id})
    elif isinstance(record, SessionUsageChanged):
        values = {k: v for k, v in _row(record).items() if v is not None}
        values["key_id"] = values.pop("id")
        if len(values) > 1:
            connection.execute(_update_by("sessions", "id"), values)
    elif isinstance(record, SessionClosed):
        values = _row(record)
        values["key_id"] = values.pop("id")
        connection.execute(_update_by("sessions", "id"), values)
    elif isinstance(record, ResponseDone):
        _apply_response_done(connection, record)
    elif isinstance(record, CallChanged):
        values = {k: v for k, v in _row(record).items() if v is not None and k != "id"}
        if values:
            connection.execute(_update_by("calls", "id"), {**values, "key_id": record.id})


def _response_done_values(record: ResponseDone) -> dict[str, Any]:
    """The `responses` columns a `response.done` sets: all but `created_at` when it was not seen."""
    values = _row(record)
    values.update(values.pop("usage"))
    if values["created_at"] is None:
        del values["created_at"]
    return values


def _batchable(done: Sequence[ResponseDone]) -> bool:
    """One upsert per batch only when no response is done twice in it: each statement must find
    the row as the one before left it, which one `executemany` does not promise everywhere."""
    return len({(record.session_id, record.response_id) for record in done}) == len(done)


@cache
def _upsert_response(dialect: str, columns: tuple[str, ...]) -> Insert:
    """INSERT of a response, or UPDATE of `columns` if it is stored (its response.created)."""
    target = models.table(models.Response)
    statement = (sqlite_insert if dialect == "sqlite" else postgresql_insert)(target)
    return statement.on_conflict_do_update(
        index_elements=[target.c.session_id, target.c.response_id],
        set_={name: statement.excluded[name] for name in columns if name not in _RESPONSE_KEY},
    )


_RESPONSE_KEY = ("session_id", "response_id")


def _apply_responses_done(connection: Connection, done: Sequence[ResponseDone]) -> None:
    """Every `ResponseDone` of a batch in one statement per column set (usually one), instead of
    an UPDATE, and an INSERT when it found nothing, for each: the same rows, fewer round trips."""
    dialect = connection.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        for record in done:
            _apply_response_done(connection, record)
        return
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for record in done:
        values = _response_done_values(record)
        by_columns.setdefault(tuple(values), []).append(values)
    for columns, rows in by_columns.items():
        connection.execute(_upsert_response(dialect, columns), rows)


def _apply_response_done(connection: Connection, record: ResponseDone) -> None:
    values = _response_done_values(record)
    del values["session_id"], values["response_id"]
    keys = {"key_session_id": record.session_id, "key_response_id": record.response_id}
    result = connection.execute(_update_by("responses", "session_id", "response_id"), values | keys)
    if result.rowcount == 0:  # its response.created was never seen (or dropped)
        values.update(session_id=record.session_id, response_id=record.response_id)
        connection.execute(_insert_new(connection, models.table(models.Response)), [values])
