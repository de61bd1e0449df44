"""Deleting old sessions with every row under them, and old failed connection attempts:
`rtrec prune` and the writer's retention."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, func, select

from storage.models import (
    AudioChunk,
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


def prune_upgrade_failures(connection: Connection, before: datetime, limit: int = 200) -> int:
    """Delete up to `limit` of the oldest failed upgrades recorded before the cutoff; like
    `prune_sessions`, call again until it returns less than `limit`."""
    failures = table(UpgradeFailure)
    doomed = select(failures.c.id).where(failures.c.ts < before).order_by(failures.c.ts)
    ids = list(connection.execute(doomed.limit(limit)).scalars())
    if ids:
        connection.execute(delete(failures).where(failures.c.id.in_(ids)))
    return len(ids)
