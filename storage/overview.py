"""Read-only totals and trends for the dashboard's overview, over sessions started in a range."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, func, or_, select

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
)


def _usage_sums(r: Any) -> list[Any]:
    return [func.sum(r[c]).label(c) for c in (*TOKEN_COLUMNS, "cost_usd")]


def _grouped(
    connection: Connection,
    rows: Table,
    columns: Sequence[Any],
    group_by: Sequence[Any],
    span: tuple[datetime | None, datetime | None],
    *where: ColumnElement[bool],
) -> list[dict[str, Any]]:
    """`columns` of `rows` (joined to their session) for sessions started within `span`."""
    query = select(*columns).where(*filter_conditions(SessionFilter(*span)), *where)
    if rows is not SESSIONS:
        query = query.join_from(rows, SESSIONS, rows.c.session_id == SESSIONS.c.id)
    if group_by:
        query = query.group_by(*group_by).order_by(*group_by)
    return dicts(connection.execute(query))


def overview_totals(
    connection: Connection, start: datetime | None, end: datetime | None
) -> dict[str, Any]:
    """Sessions, responses, tokens by kind, cost and errors of the sessions started in range."""
    s, r, t, e = SESSIONS.c, RESPONSES.c, TRANSCRIPTIONS.c, EVENTS.c
    span = (start, end)
    open_sessions = func.count().filter(s.ended_at.is_(None)).label("open_sessions")
    (totals,) = _grouped(
        connection, SESSIONS, [func.count().label("sessions"), open_sessions], [], span
    )
    (usage,) = _grouped(
        connection, RESPONSES, [func.count().label("responses"), *_usage_sums(r)], [], span
    )
    asr = [func.count().label("transcriptions"), func.sum(t.cost_usd).label("asr_cost_usd")]
    (transcriptions,) = _grouped(connection, TRANSCRIPTIONS, asr, [], span)
    errors = [func.count().label("error_events")]
    (error_events,) = _grouped(connection, EVENTS, errors, [], span, e.type == "error")
    return totals | usage | transcriptions | error_events


def daily_sessions(
    connection: Connection, start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    day, model = func.date(SESSIONS.c.started_at).label("day"), SESSIONS.c.model
    columns = [day, model, func.count().label("sessions")]
    return _grouped(connection, SESSIONS, columns, [day, model], (start, end))


def daily_usage(
    connection: Connection, start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    """Per day (of `response.created`) and session model: responses, tokens by kind, cost."""
    r = RESPONSES.c
    day = func.date(func.coalesce(r.created_at, r.done_at)).label("day")
    columns = [day, SESSIONS.c.model, func.count().label("responses"), *_usage_sums(r)]
    return _grouped(connection, RESPONSES, columns, [day, SESSIONS.c.model], (start, end))


def daily_transcription_cost(
    connection: Connection, start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    t = TRANSCRIPTIONS.c
    day = func.date(t.ts).label("day")
    columns = [day, t.model, func.count().label("transcriptions")]
    columns += [func.sum(t.cost_usd).label("cost_usd"), func.sum(t.seconds).label("seconds")]
    return _grouped(connection, TRANSCRIPTIONS, columns, [day, t.model], (start, end))


def response_latencies(
    connection: Connection, start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    """Model, time to first audio and to first text (ms) of every timed response."""
    r = RESPONSES.c
    columns = [SESSIONS.c.model, r.time_to_first_audio_ms, r.time_to_first_text_ms]
    timed = or_(r.time_to_first_audio_ms.is_not(None), r.time_to_first_text_ms.is_not(None))
    return _grouped(connection, RESPONSES, columns, [], (start, end), timed)


def error_counts(
    connection: Connection, start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    """`error` events and failed responses by type and code, with how many sessions saw each."""
    found: list[dict[str, Any]] = []
    for source, rows, condition in (
        ("error event", EVENTS, EVENTS.c.type == "error"),
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
    connection: Connection, start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    """Per day and limit name: the lowest `remaining`, the `limit` and the updates seen."""
    rl = RATE_LIMITS.c
    day = func.date(rl.ts).label("day")
    columns = [day, rl.name, func.min(rl.remaining).label("lowest_remaining")]
    columns += [func.max(rl.limit_value).label("limit_value"), func.count().label("updates")]
    return _grouped(connection, RATE_LIMITS, columns, [day, rl.name], (start, end))
