"""Queries over session properties (`Rtrec-Property-*` tags): filters and cost by property."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Float, and_, cast, exists, func, select

from storage.models import RealtimeSession, Response, SessionProperty, table

PROPERTIES = table(SessionProperty)
_SESSIONS = table(RealtimeSession)
_RESPONSES = table(Response)
# The dashboard lists the most common values of each name; a long tail stays out of the widget.
MAX_VALUES_PER_NAME = 200


def has_property(name: str, value: str) -> ColumnElement[bool]:
    """A condition on `sessions`: the session carries the property `name` = `value`."""
    return exists().where(
        PROPERTIES.c.session_id == _SESSIONS.c.id,
        PROPERTIES.c.name == name,
        PROPERTIES.c.value == value,
    )


def session_properties(connection: Connection, session_id: str) -> dict[str, str]:
    query = select(PROPERTIES.c.name, PROPERTIES.c.value).where(
        PROPERTIES.c.session_id == session_id
    )
    return {name: value for name, value in connection.execute(query)}


def first_values(connection: Connection, name: str, limit: int) -> list[str]:
    """The first `limit` values property `name` took, by the session that first carried each."""
    first_seen = func.min(_SESSIONS.c.started_at)
    query = (
        select(PROPERTIES.c.value)
        .join(_SESSIONS, _SESSIONS.c.id == PROPERTIES.c.session_id)
        .where(PROPERTIES.c.name == name)
        .group_by(PROPERTIES.c.value)
        .order_by(first_seen, PROPERTIES.c.value)
        .limit(limit)
    )
    return list(connection.execute(query).scalars())


def property_choices(connection: Connection) -> dict[str, list[str]]:
    """Every property name with its most used values (most sessions first)."""
    sessions = func.count().label("sessions")
    query = (
        select(PROPERTIES.c.name, PROPERTIES.c.value, sessions)
        .group_by(PROPERTIES.c.name, PROPERTIES.c.value)
        .order_by(PROPERTIES.c.name, sessions.desc(), PROPERTIES.c.value)
    )
    choices: dict[str, list[str]] = {}
    for name, value, _ in connection.execute(query):
        values = choices.setdefault(name, [])
        if len(values) < MAX_VALUES_PER_NAME:
            values.append(value)
    return choices


def usage_by_property(
    connection: Connection, name: str, start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    """Sessions, responses, tokens and cost per value of `name` (None: sessions without it)."""
    s, r, p = _SESSIONS.c, _RESPONSES.c, PROPERTIES.c
    query = (
        select(
            p.value,
            func.count(func.distinct(s.id)).label("sessions"),
            func.count(r.id).label("responses"),
            *(
                cast(func.coalesce(func.sum(r[c]), 0), Float).label(c)
                for c in ("input_tokens", "output_tokens", "total_tokens")
            ),
            cast(func.sum(r.cost_usd), Float).label("cost_usd"),
        )
        .select_from(_SESSIONS)
        .outerjoin(PROPERTIES, and_(p.session_id == s.id, p.name == name))
        .outerjoin(_RESPONSES, r.session_id == s.id)
        .group_by(p.value)
        .order_by(p.value)
    )
    if start is not None:
        query = query.where(s.started_at >= start)
    if end is not None:
        query = query.where(s.started_at < end)
    rows = [dict(row._mapping) for row in connection.execute(query)]
    for row in rows:  # integers on every dialect (PostgreSQL sums BIGINT as NUMERIC)
        for column in ("input_tokens", "output_tokens", "total_tokens"):
            row[column] = int(row[column])
    return rows
