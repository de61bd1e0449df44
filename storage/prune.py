"""Deleting old sessions with every row under them, old calls no session refers to any more, and
old failed connection attempts: `rtrec prune` and the writer's retention."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, exists, func, select

from storage.models import (
    AudioChunk,
    Call,
    CallEvent,
    Event,
    RateLimit,
    RealtimeSession,
    Response,
    SessionProperty,
    Transcription,
    UpgradeFailure,
    table,
)


def prune_sessions(connection: Connection, started_before: datetime, limit: int = 200) -> int:
    """Delete up to `limit` of the oldest sessions started before the cutoff, with their rows;
    how many. Small batches keep each transaction short, so writers are never blocked for long;
    call again until it returns less than `limit`, then `prune_calls` for the calls they left."""
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


def prune_calls(connection: Connection, created_before: datetime, limit: int = 200) -> int:
    """Delete up to `limit` of the oldest calls created before the cutoff that no remaining
    session refers to, with their `call_events`; a call still watched by a kept session stays."""
    calls, sessions = table(Call), table(RealtimeSession)
    orphaned = ~exists().where(sessions.c.call_id == calls.c.id)
    doomed = list(
        connection.execute(
            select(calls.c.id)
            .where(calls.c.created_at < created_before, orphaned)
            .order_by(calls.c.created_at)
            .limit(limit)
        ).scalars()
    )
    if doomed:
        events = table(CallEvent)  # first: SQLite cascades only with foreign keys switched on
        connection.execute(delete(events).where(events.c.call_id.in_(doomed)))
        connection.execute(delete(calls).where(calls.c.id.in_(doomed)))
    return len(doomed)


def count_sessions_started_before(connection: Connection, started_before: datetime) -> int:
    sessions = table(RealtimeSession)
    query = select(func.count()).where(sessions.c.started_at < started_before)
    return int(connection.execute(query).scalar_one())


def prune_upgrade_failures(connection: Connection, before: datetime, limit: int = 200) -> int:
    """Delete up to `limit` of the oldest failed upgrades recorded before the cutoff; like
    `prune_sessions`, call again until it returns less than `limit`."""
    failures = table(UpgradeFailure)
    doomed = select(failures.c.id).where(failures.c.ts < before).order_by(failures.c.ts)
    ids = list(connection.execute(doomed.limit(limit)).scalars())
    if ids:
        connection.execute(delete(failures).where(failures.c.id.in_(ids)))
    return len(ids)
