"""Reads of one recorded session as plain dicts, for `rtrec diff` and `rtrec replay`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

import protocol
from protocol import live
from storage.cost import session_costs
from storage.event_index import of_types
from storage.models import AudioChunk, Event, RealtimeSession, Response, Transcription, table
from storage.properties import session_properties

EVENTS = table(Event)
RESPONSES = table(Response)
# A GPT-Live session's turns come from its transcript deltas, not from `response.done`.
DIFF_EVENT_TYPES = sorted({*protocol.DIFF_EVENT_TYPES, *live.TRANSCRIPT_DELTAS, *live.ERROR_EVENTS})
AUDIO = table(AudioChunk)


def _dicts(rows: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in rows]


def session_summary(connection: Connection, session_id: str) -> dict[str, Any] | None:
    """The session row, its properties, cost (storage/cost.py), responses, transcriptions, the
    final, error and transcript events its turns are read from, and each response's audio ms."""
    sessions = table(RealtimeSession)
    row = connection.execute(select(sessions).where(sessions.c.id == session_id)).first()
    if row is None:
        return None
    transcriptions = table(Transcription)
    return {
        "session": dict(row._mapping),
        "properties": session_properties(connection, session_id),
        "cost": session_costs(connection, [session_id])[session_id],
        "audio_ms": response_audio_ms(connection, session_id),
        "responses": _dicts(
            connection.execute(
                select(RESPONSES)
                .where(RESPONSES.c.session_id == session_id)
                .order_by(RESPONSES.c.id)
            )
        ),
        "transcriptions": _dicts(
            connection.execute(
                select(transcriptions)
                .where(transcriptions.c.session_id == session_id)
                .order_by(transcriptions.c.id)
            )
        ),
        "events": _dicts(
            connection.execute(
                select(EVENTS.c.seq, EVENTS.c.ts, EVENTS.c.type, EVENTS.c.payload)
                .where(EVENTS.c.session_id == session_id, of_types(EVENTS.c.type, DIFF_EVENT_TYPES))
                .order_by(EVENTS.c.seq)
            )
        ),
    }


def response_audio_ms(connection: Connection, session_id: str) -> dict[str, float]:
    """Milliseconds of audio the server sent, per response id (only what the recording kept)."""
    query = (
        select(AUDIO.c.response_id, AUDIO.c.audio_format, AUDIO.c.sample_rate)
        .add_columns(func.sum(func.length(AUDIO.c.data)))
        .where(
            AUDIO.c.session_id == session_id,
            AUDIO.c.direction == "server",
            AUDIO.c.response_id.is_not(None),
        )
        .group_by(AUDIO.c.response_id, AUDIO.c.audio_format, AUDIO.c.sample_rate)
    )
    found: dict[str, float] = {}
    for response_id, name, rate, size in connection.execute(query):
        per_second = protocol.AudioFormat(name, rate).bytes_per_second
        found[response_id] = found.get(response_id, 0.0) + int(size) * 1000 / per_second
    return found


def replay_events(connection: Connection, session_id: str) -> Iterator[dict[str, Any]]:
    """Every event of the session in `seq` order with what a replay needs, streamed."""
    query = (
        select(
            EVENTS.c.seq,
            EVENTS.c.ts,
            EVENTS.c.direction,
            EVENTS.c.type,
            EVENTS.c.payload,
            EVENTS.c.response_id,
            EVENTS.c.item_id,
        )
        .where(EVENTS.c.session_id == session_id)
        .order_by(EVENTS.c.seq)
    ).execution_options(yield_per=1000)
    for row in connection.execute(query):
        yield dict(row._mapping)


def latest_replay(connection: Connection, session_id: str, started_from: datetime) -> str | None:
    """The newest session replaying `session_id` that started at or after `started_from`."""
    sessions = table(RealtimeSession)
    query = (
        select(sessions.c.id)
        .where(sessions.c.replay_of == session_id, sessions.c.started_at >= started_from)
        .order_by(sessions.c.started_at.desc())
        .limit(1)
    )
    return connection.execute(query).scalar()
