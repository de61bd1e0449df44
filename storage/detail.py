"""One session's reads: its row, responses, transcriptions, events and audio, for the dashboard's
session page and `rtrec export`/`replay`. Every function takes a Connection first, never commits."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, func, select

import protocol
from protocol import live
from storage import audio_segments
from storage.browse import (
    AUDIO,
    EVENTS,
    RATE_LIMITS,
    RESPONSES,
    SESSIONS,
    TRANSCRIPTIONS,
    dicts,
    int_sum,
)
from storage.event_index import of_types


def get_session(connection: Connection, session_id: str) -> dict[str, Any] | None:
    row = connection.execute(select(SESSIONS).where(SESSIONS.c.id == session_id)).first()
    return dict(row._mapping) if row else None


def session_responses(connection: Connection, session_id: str) -> list[dict[str, Any]]:
    r = RESPONSES.c
    query = select(RESPONSES).where(r.session_id == session_id).order_by(r.created_at, r.id)
    return dicts(connection.execute(query))


def session_transcriptions(connection: Connection, session_id: str) -> list[dict[str, Any]]:
    t = TRANSCRIPTIONS.c
    query = select(TRANSCRIPTIONS).where(t.session_id == session_id).order_by(t.ts, t.id)
    return dicts(connection.execute(query))


def session_rate_limits(connection: Connection, session_id: str) -> list[dict[str, Any]]:
    rl = RATE_LIMITS.c
    query = (
        select(rl.ts, rl.name, rl.limit_value, rl.remaining, rl.reset_seconds)
        .where(rl.session_id == session_id)
        .order_by(rl.ts, rl.id)
    )
    return dicts(connection.execute(query))


def conversation_events(connection: Connection, session_id: str) -> list[dict[str, Any]]:
    """The events a conversation is rebuilt from, in `seq` order (no deltas, no audio appends)."""
    e = EVENTS.c
    query = (
        select(e.seq, e.ts, e.direction, e.type, e.response_id, e.item_id, e.payload)
        .where(e.session_id == session_id, of_types(e.type, protocol.CONVERSATION_EVENT_TYPES))
        .order_by(e.seq)
    )
    return dicts(connection.execute(query))


def live_events(connection: Connection, session_id: str) -> list[dict[str, Any]]:
    """A GPT-Live session's transcript deltas, delegations, decisions, close and errors."""
    e = EVENTS.c
    query = (
        select(e.seq, e.ts, e.direction, e.type, e.payload)
        .where(e.session_id == session_id, of_types(e.type, live.PRESENTED_EVENT_TYPES))
        .order_by(e.seq)
    )
    return dicts(connection.execute(query))


def client_events_by_id(
    connection: Connection, session_id: str, event_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """The client events of a session carrying these `event_id`s (what errors name as cause)."""
    if not event_ids:
        return []
    e = EVENTS.c
    query = (
        select(e.seq, e.ts, e.type, e.event_id, e.payload)
        .where(e.session_id == session_id, e.direction == "client", e.event_id.in_(event_ids))
        .order_by(e.seq)
    )
    return dicts(connection.execute(query))


def speech_stops(connection: Connection, session_id: str) -> list[datetime]:
    """When the server said each `input_audio_buffer.speech_stopped`, in order."""
    e = EVENTS.c
    query = (
        select(e.ts)
        .where(e.session_id == session_id, of_types(e.type, [protocol.SPEECH_STOPPED]))
        .order_by(e.seq)
    )
    return list(connection.scalars(query))


def event_type_counts(connection: Connection, session_id: str) -> list[dict[str, Any]]:
    """How many events of each direction and type the session has, with their bytes."""
    e = EVENTS.c
    query = (
        select(e.direction, e.type, func.count().label("events"), int_sum(e.size_bytes))
        .where(e.session_id == session_id)
        .group_by(e.direction, e.type)
        .order_by(e.direction, e.type)
    )
    return [
        {"direction": direction, "type": kind, "events": count, "size_bytes": int(size or 0)}
        for direction, kind, count, size in connection.execute(query)
    ]


def _event_selection(
    session_id: str, directions: Sequence[str], types: Sequence[str]
) -> list[ColumnElement[bool]]:
    e = EVENTS.c
    conditions: list[ColumnElement[bool]] = [e.session_id == session_id]
    if directions:
        conditions.append(e.direction.in_(directions))
    if types:
        conditions.append(of_types(e.type, types))
    return conditions


def events_page(
    connection: Connection,
    session_id: str,
    directions: Sequence[str],
    types: Sequence[str],
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    """A page of a session's events in `seq` order, narrowed by direction and type."""
    e = EVENTS.c
    query: Select[Any] = (
        select(e.seq, e.ts, e.direction, e.type, e.size_bytes, e.response_id, e.item_id)
        .add_columns(e.event_id, e.error_code, e.payload)
        .where(*_event_selection(session_id, directions, types))
        .order_by(e.seq)
        .limit(limit)
        .offset(offset)
    )
    return dicts(connection.execute(query))


def session_events(connection: Connection, session_id: str) -> Iterator[dict[str, Any]]:
    """Every event of a session in `seq` order, streamed, as the JSONL export writes them."""
    query = (
        select(EVENTS).where(EVENTS.c.session_id == session_id).order_by(EVENTS.c.seq)
    ).execution_options(yield_per=2000)
    for row in connection.execute(query):
        yield dict(row._mapping)


def count_events(connection: Connection, session_id: str) -> int:
    query = select(func.count()).select_from(EVENTS).where(EVENTS.c.session_id == session_id)
    return int(connection.execute(query).scalar_one())


def audio_index(connection: Connection, session_id: str) -> list[dict[str, Any]]:
    """Where a session's audio chunks are (seq, side, response, format, bytes), without the data."""
    a = AUDIO.c
    query = (
        select(a.seq, a.direction, a.response_id, a.audio_format, a.sample_rate)
        .add_columns(func.length(a.data).label("size_bytes"), a.chunks)
        .where(a.session_id == session_id)
        .order_by(a.seq)
    )
    chunks = audio_segments.expand_sizes(dicts(connection.execute(query)))
    return sorted(chunks, key=lambda chunk: int(chunk["seq"]))


def audio_chunks(
    connection: Connection,
    session_id: str,
    direction: str,
    seq_range: tuple[int, int] | None = None,
    response_id: str | None = None,
) -> list[dict[str, Any]]:
    """One side's audio chunks with their bytes, optionally between two `seq` (inclusive)."""
    a = AUDIO.c
    conditions = [a.session_id == session_id, a.direction == direction]
    if seq_range is not None:  # segments that overlap the range: cut to it below
        conditions += [a.seq <= seq_range[1], func.coalesce(a.last_seq, a.seq) >= seq_range[0]]
    if response_id is not None:
        conditions.append(a.response_id == response_id)
    query = (
        select(a.seq, a.ts, a.audio_format, a.sample_rate, a.data, a.chunks)
        .where(*conditions)
        .order_by(a.seq)
    )
    chunks = audio_segments.expand(dicts(connection.execute(query)))
    if seq_range is None:
        return list(chunks)
    first, last = seq_range
    return [chunk for chunk in chunks if first <= chunk["seq"] <= last]
