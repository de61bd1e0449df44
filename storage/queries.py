"""Read (and prune) queries shared by the CLI and the dashboard; callers own the transaction."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Float,
    cast,
    delete,
    func,
    select,
)

from storage import audio_segments
from storage.models import (
    AudioChunk,
    Event,
    RateLimit,
    RealtimeSession,
    Response,
    SessionProperty,
    Transcription,
    table,
)
from storage.properties import has_property

SESSION_COLUMNS = [c.name for c in table(RealtimeSession).columns]


def list_sessions(
    connection: Connection, limit: int = 50, properties: Sequence[tuple[str, str]] = ()
) -> list[dict[str, Any]]:
    """Newest sessions first, each with its `sessions` columns and per-session totals;
    `properties` keeps only sessions carrying every one of those (name, value) pairs."""
    sessions = table(RealtimeSession)
    events = (
        select(func.count())
        .where(table(Event).c.session_id == sessions.c.id)
        .scalar_subquery()
        .label("events")
    )
    responses = table(Response)
    totals = (
        select(
            responses.c.session_id,
            func.count().label("responses"),
            # PostgreSQL sums BIGINT as NUMERIC; keep plain integers and floats on every dialect.
            cast(func.sum(responses.c.total_tokens), BigInteger).label("total_tokens"),
            cast(func.sum(responses.c.input_tokens), BigInteger).label("input_tokens"),
            cast(func.sum(responses.c.output_tokens), BigInteger).label("output_tokens"),
            cast(func.sum(responses.c.cost_usd), Float).label("cost_usd"),
        )
        .group_by(responses.c.session_id)
        .subquery()
    )
    query = (
        select(
            sessions,
            events,
            func.coalesce(totals.c.responses, 0).label("responses"),
            totals.c.input_tokens,
            totals.c.output_tokens,
            totals.c.total_tokens,
            totals.c.cost_usd,
        )
        .outerjoin(totals, totals.c.session_id == sessions.c.id)
        .where(*(has_property(name, value) for name, value in properties))
        .order_by(sessions.c.started_at.desc(), sessions.c.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in connection.execute(query)]


def get_session(connection: Connection, session_id: str) -> dict[str, Any] | None:
    sessions = table(RealtimeSession)
    row = connection.execute(select(sessions).where(sessions.c.id == session_id)).first()
    return dict(row._mapping) if row else None


def session_ids_starting(connection: Connection, prefix: str, limit: int = 2) -> list[str]:
    """Up to `limit` session ids that are `prefix` or start with it; an exact match comes first."""
    sessions = table(RealtimeSession)
    exact = connection.execute(select(sessions.c.id).where(sessions.c.id == prefix)).scalar()
    if exact is not None:
        return [exact]
    query = (
        select(sessions.c.id)
        .where(sessions.c.id.startswith(prefix, autoescape=True))
        .order_by(sessions.c.id)
        .limit(limit)
    )
    return list(connection.execute(query).scalars())


def session_events(connection: Connection, session_id: str) -> Iterator[dict[str, Any]]:
    """A session's events in `seq` order, streamed so huge sessions stay out of memory."""
    events = table(Event)
    query = (
        select(events).where(events.c.session_id == session_id).order_by(events.c.seq)
    ).execution_options(yield_per=1000)
    for row in connection.execute(query):
        yield dict(row._mapping)


def session_audio(connection: Connection, session_id: str, direction: str) -> list[dict[str, Any]]:
    """One side's audio chunks (`client` = user, `server` = assistant) in arrival order."""
    audio = table(AudioChunk)
    query = (
        select(
            audio.c.seq,
            audio.c.ts,
            audio.c.audio_format,
            audio.c.sample_rate,
            audio.c.data,
            audio.c.chunks,
        )
        .where(audio.c.session_id == session_id, audio.c.direction == direction)
        .order_by(audio.c.seq)
    )
    return list(audio_segments.expand(dict(row._mapping) for row in connection.execute(query)))


def prune_sessions(connection: Connection, started_before: datetime, limit: int = 200) -> int:
    """Delete up to `limit` of the oldest sessions started before the cutoff, with their rows.

    Small batches keep each transaction short, so writers are never blocked for long; call
    again until it returns less than `limit`.
    """
    sessions = table(RealtimeSession)
    doomed = list(
        connection.execute(
            select(sessions.c.id)
            .where(sessions.c.started_at < started_before)
            .order_by(sessions.c.started_at)
            .limit(limit)
        ).scalars()
    )
    if not doomed:
        return 0
    # Children first: SQLite only cascades when foreign keys are on for the connection.
    for model in (Event, Response, RateLimit, Transcription, AudioChunk, SessionProperty):
        child = table(model)
        connection.execute(delete(child).where(child.c.session_id.in_(doomed)))
    connection.execute(delete(sessions).where(sessions.c.id.in_(doomed)))
    return len(doomed)


def count_sessions_started_before(connection: Connection, started_before: datetime) -> int:
    sessions = table(RealtimeSession)
    query = select(func.count()).where(sessions.c.started_at < started_before)
    return int(connection.execute(query).scalar_one())


def count_events(connection: Connection, session_id: str) -> int:
    events = table(Event)
    query = select(func.count()).select_from(events).where(events.c.session_id == session_id)
    return int(connection.execute(query).scalar_one())
