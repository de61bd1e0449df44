"""Which calls there are and what one call holds: the dashboard's Calls pages read these.

A call's conversation lives in its sessions (the sidebands that watched it, `sessions.call_id`);
its cost is theirs, which the recorder already keeps once per call (docs/schema.md#call_events).
Every function takes a Connection first and never commits.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Connection, func, select

from storage.browse import CALLS, EVENTS, SESSIONS, dicts, ids_starting
from storage.cost import session_costs
from storage.event_index import of_types
from storage.models import CallEvent, table

CALL_EVENTS = table(CallEvent)
LISTED_COLUMNS = (
    "id",
    "api",
    "transport",
    "model",
    "status",
    "end_reason",
    "created_at",
    "answered_at",
    "ended_at",
)


def count_calls(connection: Connection) -> int:
    return int(connection.execute(select(func.count()).select_from(CALLS)).scalar_one())


def list_calls(connection: Connection, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    """Newest calls first, each with `sessions` (how many sidebands watched it) and `cost_usd`
    (its sessions' cost; None when none of it was priced)."""
    sessions = (
        select(func.count())
        .where(SESSIONS.c.call_id == CALLS.c.id)
        .scalar_subquery()
        .label("sessions")
    )
    query = (
        select(*(CALLS.c[name] for name in LISTED_COLUMNS), sessions)
        .order_by(CALLS.c.created_at.desc(), CALLS.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = dicts(connection.execute(query))
    costs = _call_costs(connection, [row["id"] for row in rows])
    return [row | {"cost_usd": costs.get(row["id"])} for row in rows]


def _call_costs(connection: Connection, call_ids: Sequence[str]) -> dict[str, float | None]:
    """Each call's cost: the sum of its sessions' costs (a call watched twice counts once)."""
    if not call_ids:
        return {}
    linked = connection.execute(
        select(SESSIONS.c.id, SESSIONS.c.call_id).where(SESSIONS.c.call_id.in_(call_ids))
    ).all()
    costs = session_costs(connection, [session_id for session_id, _ in linked])
    totals: dict[str, float | None] = {}
    for session_id, call_id in linked:
        cost = costs[session_id]["cost_usd"]
        if cost is not None:
            totals[call_id] = (totals.get(call_id) or 0.0) + cost
    return totals


def get_call(connection: Connection, call_id: str) -> dict[str, Any] | None:
    """The `calls` row with its sessions' cost, or None."""
    found = dicts(connection.execute(select(CALLS).where(CALLS.c.id == call_id)))
    if not found:
        return None
    return found[0] | {"cost_usd": _call_costs(connection, [call_id]).get(call_id)}


def call_ids_starting(connection: Connection, prefix: str, limit: int = 2) -> list[str]:
    """Up to `limit` call ids that are `prefix` or start with it; an exact match comes first."""
    return ids_starting(connection, CALLS.c.id, prefix, limit)


def call_events(connection: Connection, call_id: str) -> list[dict[str, Any]]:
    """The call's control requests and sightings (`call_events`), oldest first."""
    e = CALL_EVENTS.c
    query = (
        select(e.ts, e.kind, e.status, e.detail).where(e.call_id == call_id).order_by(e.ts, e.id)
    )
    return dicts(connection.execute(query))


def call_sessions(connection: Connection, call_id: str) -> list[dict[str, Any]]:
    """The sessions that watched the call (its sidebands), in the order they opened."""
    s = SESSIONS.c
    query = (
        select(s.id, s.api, s.model, s.call_role, s.started_at, s.ended_at)
        .where(s.call_id == call_id)
        .order_by(s.started_at, s.id)
    )
    return dicts(connection.execute(query))


def session_events_of_types(
    connection: Connection, session_ids: Sequence[str], types: Collection[str]
) -> list[dict[str, Any]]:
    """The listed sessions' events of the given types (a call's DTMF, ringing…), oldest first."""
    if not session_ids:
        return []
    e = EVENTS.c
    query = (
        select(e.session_id, e.seq, e.ts, e.direction, e.type, e.event_id, e.payload)
        .where(e.session_id.in_(session_ids), of_types(e.type, types))
        .order_by(e.ts, e.session_id, e.seq)
    )
    return dicts(connection.execute(query))
