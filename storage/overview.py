"""Read-only totals and trends for the dashboard's overview, over sessions started in a range."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, func, select

import protocol
from storage import models
from storage.browse import (
    EVENTS,
    RATE_LIMITS,
    RESPONSES,
    SESSIONS,
    TOKEN_COLUMNS,
    TRANSCRIPTIONS,
    SessionFilter,
    dicts,
    filter_conditions,
    int_sum,
)
from storage.event_index import of_types

BUCKETS = ("day", "hour")


def _bucket(connection: Connection, column: Any, bucket: str) -> Any:
    """The UTC day (a date) or hour (`YYYY-MM-DD HH:00`) of a timestamp, labelled `bucket`."""
    if bucket == "day":
        return func.date(column).label("day")
    if bucket != "hour":
        raise ValueError(f"bucket is one of {BUCKETS}, not {bucket!r}")
    if connection.dialect.name == "postgresql":
        hour = func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24:00")
    else:
        hour = func.strftime("%Y-%m-%d %H:00", column)
    return hour.label("hour")


def _usage_sums(r: Any) -> list[Any]:
    return [
        *(int_sum(r[c]).label(c) for c in TOKEN_COLUMNS),
        func.sum(r.cost_usd).label("cost_usd"),
    ]


def _grouped(
    connection: Connection,
    rows: Table,
    columns: Sequence[Any],
    group_by: Sequence[Any],
    span: tuple[datetime | None, datetime | None],
    *where: ColumnElement[bool],
    join: bool = False,
) -> list[dict[str, Any]]:
    """`columns` of `rows` for the sessions started within `span`.

    Rows are joined to their session when `join` (a column of `sessions` is asked for); otherwise
    they are picked with `session_id IN (…)`, which lets SQLite walk the (session_id, …) indexes
    instead of scanning the table (the error events are a few among millions).
    """
    in_span = filter_conditions(SessionFilter(*span))
    query = select(*columns).where(*where)
    if rows is SESSIONS:
        query = query.where(*in_span)
    elif join:
        query = query.join_from(rows, SESSIONS, rows.c.session_id == SESSIONS.c.id)
        query = query.where(*in_span)
    else:
        query = query.where(rows.c.session_id.in_(select(SESSIONS.c.id).where(*in_span)))
    if group_by:
        query = query.group_by(*group_by).order_by(*group_by)
    return dicts(connection.execute(query))


def daily_sessions(
    connection: Connection, start: datetime | None, end: datetime | None, bucket: str = "day"
) -> list[dict[str, Any]]:
    """Sessions started per day (or hour) and model, and how many of them are still open."""
    s = SESSIONS.c
    day = _bucket(connection, s.started_at, bucket)
    columns = [day, s.model, func.count().label("sessions")]
    columns.append(func.count().filter(s.ended_at.is_(None)).label("open_sessions"))
    return _grouped(connection, SESSIONS, columns, [day, s.model], (start, end))


def daily_usage(
    connection: Connection, start: datetime | None, end: datetime | None, bucket: str = "day"
) -> list[dict[str, Any]]:
    """Per day or hour (of `response.created`) and session model: responses, tokens, cost."""
    r = RESPONSES.c
    day = _bucket(connection, func.coalesce(r.created_at, r.done_at), bucket)
    columns = [day, SESSIONS.c.model, func.count().label("responses"), *_usage_sums(r)]
    groups = [day, SESSIONS.c.model]
    return _grouped(connection, RESPONSES, columns, groups, (start, end), join=True)


def daily_transcription_cost(
    connection: Connection, start: datetime | None, end: datetime | None, bucket: str = "day"
) -> list[dict[str, Any]]:
    t = TRANSCRIPTIONS.c
    day = _bucket(connection, t.ts, bucket)
    columns = [day, t.model, func.count().label("transcriptions")]
    columns += [func.sum(t.cost_usd).label("cost_usd"), func.sum(t.seconds).label("seconds")]
    return _grouped(connection, TRANSCRIPTIONS, columns, [day, t.model], (start, end))


def _ms_between(connection: Connection, start: Any, end: Any) -> ColumnElement[Any]:
    """Milliseconds from one timestamp column to another, on either database."""
    if connection.dialect.name == "postgresql":
        return func.extract("epoch", end - start) * 1000
    return (func.julianday(end) - func.julianday(start)) * 86_400_000


def latency_histogram(
    connection: Connection, start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    """How many responses per model took each whole number of ms, per latency measure: time to
    first audio and text, turn latency, voice-to-voice and response duration (created → done).

    Percentiles come from these counts: a few thousand rows instead of one per response.
    """
    r = RESPONSES.c
    found: list[dict[str, Any]] = []
    for name, column in (
        ("time_to_first_audio_ms", r.time_to_first_audio_ms),
        ("time_to_first_text_ms", r.time_to_first_text_ms),
        ("turn_latency_ms", r.turn_latency_ms),
        ("voice_to_voice_ms", r.voice_to_voice_ms),
        ("response_duration_ms", _ms_between(connection, r.created_at, r.done_at)),
    ):
        ms = func.round(column).label("ms")
        columns = [SESSIONS.c.model, ms, func.count().label("responses")]
        groups = [SESSIONS.c.model, ms]
        span = (start, end)
        rows = _grouped(
            connection, RESPONSES, columns, groups, span, column.is_not(None), join=True
        )
        found += [{"latency": name, **row} for row in rows]
    return found


def error_counts(
    connection: Connection, start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    """`error` events and failed responses by type and code, with how many sessions saw each."""
    found: list[dict[str, Any]] = []
    for source, rows, condition in (
        ("error event", EVENTS, of_types(EVENTS.c.type, [protocol.ERROR])),
        ("failed response", RESPONSES, RESPONSES.c.status == "failed"),
    ):
        c = rows.c
        columns = [c.error_type, c.error_code, func.count().label("count")]
        columns.append(func.count(c.session_id.distinct()).label("sessions"))
        groups = [c.error_type, c.error_code]
        found += [
            {"source": source, **row}
            for row in _grouped(connection, rows, columns, groups, (start, end), condition)
        ]
    return sorted(found, key=lambda row: -row["count"])


def daily_rate_limits(
    connection: Connection, start: datetime | None, end: datetime | None, bucket: str = "day"
) -> list[dict[str, Any]]:
    """Per day or hour and limit name: the lowest `remaining`, the `limit` and the updates."""
    rl = RATE_LIMITS.c
    day = _bucket(connection, rl.ts, bucket)
    columns = [day, rl.name, func.min(rl.remaining).label("lowest_remaining")]
    columns += [func.max(rl.limit_value).label("limit_value"), func.count().label("updates")]
    return _grouped(connection, RATE_LIMITS, columns, [day, rl.name], (start, end))


def upgrade_failures(
    connection: Connection, start: datetime | None, end: datetime | None, limit: int = 200
) -> list[dict[str, Any]]:
    """Failed `/realtime` connection attempts in the range, newest first: when, status, why."""
    failures = models.table(models.UpgradeFailure)
    c = failures.c
    query = select(c.ts, c.status, c.reason, c.path, c.upstream, c.client_addr)
    if start is not None:
        query = query.where(c.ts >= start)
    if end is not None:
        query = query.where(c.ts < end)
    return dicts(connection.execute(query.order_by(c.ts.desc()).limit(limit)))
