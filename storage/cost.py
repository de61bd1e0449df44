"""The one cost of a session that `rtrec sessions`, the dashboard and `rtrec diff` all show.

A session costs what its responses cost plus what its input transcriptions cost
(docs/prices.md), plus a GPT-Live session's billed seconds (`sessions.seconds_cost_usd`).
A row with usage but no price (a model missing from the price table) makes the session's cost
incomplete: `unpriced` counts such rows, and `rtrec diff` treats that cost as unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Float, and_, cast, func, or_, select

from storage.models import RealtimeSession, Response, Transcription, table

SESSIONS = table(RealtimeSession)
RESPONSES = table(Response)
TRANSCRIPTIONS = table(Transcription)


def _unpriced_response() -> ColumnElement[bool]:
    return and_(RESPONSES.c.cost_usd.is_(None), RESPONSES.c.total_tokens > 0)


def _unpriced_transcription() -> ColumnElement[bool]:
    t = TRANSCRIPTIONS.c
    return and_(t.cost_usd.is_(None), or_(t.total_tokens > 0, t.seconds > 0))


def session_costs(connection: Connection, session_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """`cost_usd` (None when nothing was priced) and `unpriced` (rows without a price) per id."""
    costs: dict[str, dict[str, Any]] = {
        sid: {"cost_usd": None, "unpriced": 0} for sid in session_ids
    }
    if not session_ids:
        return costs
    for source, unpriced in (
        (RESPONSES, _unpriced_response()),
        (TRANSCRIPTIONS, _unpriced_transcription()),
    ):
        query = select(
            source.c.session_id,
            # A float on every dialect (PostgreSQL would sum into NUMERIC, i.e. Decimal).
            cast(func.sum(source.c.cost_usd), Float),
            func.count().filter(unpriced),
        ).where(source.c.session_id.in_(session_ids))
        for session_id, cost_usd, missing in connection.execute(
            query.group_by(source.c.session_id)
        ):
            entry = costs[session_id]
            if cost_usd is not None:
                entry["cost_usd"] = (entry["cost_usd"] or 0.0) + cost_usd
            entry["unpriced"] += missing
    billed = select(SESSIONS.c.id, SESSIONS.c.seconds_cost_usd).where(
        SESSIONS.c.id.in_(session_ids), SESSIONS.c.seconds_cost_usd.is_not(None)
    )
    for session_id, cost_usd in connection.execute(billed):  # GPT-Live's billed seconds
        costs[session_id]["cost_usd"] = (costs[session_id]["cost_usd"] or 0.0) + cost_usd
    return costs


def session_cost_expression() -> ColumnElement[Any]:
    """The same cost as a correlated SQL expression over `sessions` (0 when nothing is priced),
    for filtering the session list by cost."""
    responses = (
        select(func.sum(RESPONSES.c.cost_usd))
        .where(RESPONSES.c.session_id == SESSIONS.c.id)
        .scalar_subquery()
    )
    transcriptions = (
        select(func.sum(TRANSCRIPTIONS.c.cost_usd))
        .where(TRANSCRIPTIONS.c.session_id == SESSIONS.c.id)
        .scalar_subquery()
    )
    return (
        func.coalesce(responses, 0.0)
        + func.coalesce(transcriptions, 0.0)
        + func.coalesce(SESSIONS.c.seconds_cost_usd, 0.0)
    )
