"""Which sessions there are: the filtered list the dashboard pages through and `rtrec sessions`.

Reads shared by the CLI and the dashboard are split by theme: this module (the session list and
the tables and helpers the others use), `detail.py` (one session), `overview.py` (totals over a
range), `properties.py` and `recording.py`. Every function takes a Connection first and never
commits; readers open it read-only. Deleting old sessions lives in `prune.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Result,
    and_,
    cast,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.types import Text

import protocol
from storage.cost import session_cost_expression, session_costs
from storage.event_index import of_types
from storage.models import (
    AudioChunk,
    Call,
    Event,
    RateLimit,
    RealtimeSession,
    Response,
    Transcription,
    table,
)
from storage.properties import has_property

SESSIONS = table(RealtimeSession)
EVENTS = table(Event)
RESPONSES = table(Response)
CALLS = table(Call)
RATE_LIMITS = table(RateLimit)
TRANSCRIPTIONS = table(Transcription)
AUDIO = table(AudioChunk)

# A client or server that closes with these codes ended the session on purpose (1005: no code).
NORMAL_CLOSE_CODES = (1000, 1001, 1005)
SESSION_STATUSES = ("open", "closed", "error")
TOKEN_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "input_text_tokens",
    "input_audio_tokens",
    "input_image_tokens",
    "cached_tokens",
    "cached_text_tokens",
    "cached_audio_tokens",
    "cached_image_tokens",
    "output_text_tokens",
    "output_audio_tokens",
)


@dataclass(frozen=True)
class SessionFilter:
    """What the session list is narrowed to; empty fields do not filter. Times are UTC."""

    started_from: datetime | None = None
    started_before: datetime | None = None
    models: tuple[str, ...] = ()
    apis: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    has_errors: bool = False
    min_cost_usd: float | None = None
    search: str = ""
    #: (name, value) pairs a session must all carry (`Rtrec-Property-*` tags).
    properties: tuple[tuple[str, str], ...] = ()


def int_sum(column: Any) -> Any:
    """SUM of an integer column as an integer (PostgreSQL sums BIGINT into NUMERIC)."""
    return cast(func.sum(column), BigInteger)


def dicts(result: Result[Any]) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in result]


# ----------------------------------------------------------------------------- session list


def _status_condition(status: str) -> ColumnElement[bool]:
    s = SESSIONS.c
    if status == "open":
        return s.ended_at.is_(None)
    abnormal = and_(s.close_code.is_not(None), s.close_code.not_in(NORMAL_CLOSE_CODES))
    if status == "error":
        return and_(s.ended_at.is_not(None), abnormal)
    return and_(s.ended_at.is_not(None), ~abnormal)


def _has_errors() -> ColumnElement[bool]:
    error_event = exists().where(
        EVENTS.c.session_id == SESSIONS.c.id, of_types(EVENTS.c.type, [protocol.ERROR])
    )
    failed = exists().where(RESPONSES.c.session_id == SESSIONS.c.id, RESPONSES.c.status == "failed")
    return or_(error_event, failed)


def _like_pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _payload_mentions(field: ColumnElement[Any], term: str) -> list[ColumnElement[bool]]:
    """`field` of the event payload contains `term`, with a cheap test on the raw JSON first.

    The raw text holds a plain ASCII term exactly as the field does, and matching it skips
    decoding the JSON of every row that cannot match (about 40% of a search's time).
    """
    pattern = _like_pattern(term)
    exact = field.ilike(pattern, escape="\\")
    if not (term.isascii() and term.isprintable() and '"' not in term and "\\" not in term):
        return [exact]
    return [cast(EVENTS.c.payload, Text).ilike(pattern, escape="\\"), exact]


def _mentions(term: str) -> ColumnElement[bool]:
    """Sessions whose transcripts, assistant text or typed user text contain `term`."""
    in_transcriptions = exists().where(
        TRANSCRIPTIONS.c.session_id == SESSIONS.c.id,
        TRANSCRIPTIONS.c.transcript.ilike(_like_pattern(term), escape="\\"),
    )
    output = func.coalesce(
        EVENTS.c.payload["transcript"].as_string(), EVENTS.c.payload["text"].as_string()
    )
    in_output = exists().where(
        EVENTS.c.session_id == SESSIONS.c.id,
        of_types(EVENTS.c.type, protocol.OUTPUT_TEXT_DONE),
        *_payload_mentions(output, term),
    )
    typed_text = EVENTS.c.payload[("item", "content", 0, "text")].as_string()
    typed = exists().where(
        EVENTS.c.session_id == SESSIONS.c.id,
        of_types(EVENTS.c.type, [protocol.ITEM_CREATE]),
        *_payload_mentions(typed_text, term),
    )
    return or_(in_transcriptions, in_output, typed)


def filter_conditions(session_filter: SessionFilter) -> list[ColumnElement[bool]]:
    f, s = session_filter, SESSIONS.c
    conditions: list[ColumnElement[bool]] = []
    if f.started_from is not None:
        conditions.append(s.started_at >= f.started_from)
    if f.started_before is not None:
        conditions.append(s.started_at < f.started_before)
    if f.models:
        conditions.append(s.model.in_(f.models))
    if f.apis:
        conditions.append(s.api.in_(f.apis))
    if f.statuses:
        conditions.append(or_(*(_status_condition(status) for status in f.statuses)))
    if f.has_errors:
        conditions.append(_has_errors())
    if f.min_cost_usd is not None and f.min_cost_usd > 0:
        conditions.append(session_cost_expression() >= f.min_cost_usd)
    if f.search.strip():
        conditions.append(_mentions(f.search.strip()))
    conditions.extend(has_property(name, value) for name, value in f.properties)
    return conditions


def count_sessions(connection: Connection, session_filter: SessionFilter) -> int:
    query = select(func.count()).select_from(SESSIONS).where(*filter_conditions(session_filter))
    return int(connection.execute(query).scalar_one())


def filter_choices(connection: Connection) -> dict[str, Any]:
    """Models and APIs that occur, and the first and last session start, for filter widgets."""
    s = SESSIONS.c
    models = connection.execute(select(s.model).distinct().where(s.model.is_not(None)))
    apis = connection.execute(select(s.api).distinct())
    first, last = connection.execute(select(func.min(s.started_at), func.max(s.started_at))).one()
    return {
        "models": sorted(m for (m,) in models),
        "apis": sorted(a for (a,) in apis),
        "first_started_at": first,
        "last_started_at": last,
    }


def matching_session_ids(connection: Connection, session_filter: SessionFilter) -> list[str]:
    """Ids of every matching session, newest first: one evaluation gives the count and pages."""
    query = (
        select(SESSIONS.c.id)
        .where(*filter_conditions(session_filter))
        .order_by(SESSIONS.c.started_at.desc(), SESSIONS.c.id.desc())
    )
    return list(connection.scalars(query))


def sessions_with_totals(
    connection: Connection, session_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """The listed sessions in the order given, each with its totals and, for a sideband, its
    call's `transport` (webrtc, sip); unknown ids are skipped."""
    query = (
        select(SESSIONS, CALLS.c.transport)
        .outerjoin(CALLS, CALLS.c.id == SESSIONS.c.call_id)
        .where(SESSIONS.c.id.in_(session_ids))
    )
    found = {row["id"]: row for row in dicts(connection.execute(query))}
    totals = session_totals(connection, list(found))
    return [found[sid] | totals[sid] for sid in session_ids if sid in found]


def session_totals(connection: Connection, session_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Responses, tokens, cost and error counts of each listed session (empty sessions included)."""
    totals: dict[str, dict[str, Any]] = {
        sid: {"responses": 0, "input_tokens": None, "output_tokens": None, "total_tokens": None}
        | {"cost_usd": None, "unpriced": 0, "errors": 0}
        for sid in session_ids
    }
    if not session_ids:
        return totals
    r, e = RESPONSES.c, EVENTS.c
    usage = select(
        r.session_id,
        # Turns: responses by the session's own model, not GPT-Live's delegated work.
        func.count().filter(r.model.is_(None)).label("responses"),
        int_sum(r.input_tokens).label("input_tokens"),
        int_sum(r.output_tokens).label("output_tokens"),
        int_sum(r.total_tokens).label("total_tokens"),
        func.count().filter(r.status == "failed").label("errors"),
    ).where(r.session_id.in_(session_ids))
    for row in connection.execute(usage.group_by(r.session_id)):
        totals[row.session_id].update({k: v for k, v in row._mapping.items() if k != "session_id"})
    for session_id, cost in session_costs(connection, session_ids).items():
        totals[session_id].update(cost)
    errors = select(e.session_id, func.count()).where(
        e.session_id.in_(session_ids), of_types(e.type, [protocol.ERROR])
    )
    for session_id, count in connection.execute(errors.group_by(e.session_id)):
        totals[session_id]["errors"] += count
    return totals


# ----------------------------------------------------------------------------- the CLI's list


def list_sessions(
    connection: Connection, limit: int = 50, properties: Sequence[tuple[str, str]] = ()
) -> list[dict[str, Any]]:
    """Newest sessions first, each with its `sessions` columns and per-session totals;
    `properties` keeps only sessions carrying every one of those (name, value) pairs."""
    events = (
        select(func.count())
        .where(EVENTS.c.session_id == SESSIONS.c.id)
        .scalar_subquery()
        .label("events")
    )
    r = RESPONSES.c
    totals = (
        select(
            r.session_id,
            func.count().label("responses"),
            int_sum(r.total_tokens).label("total_tokens"),
            int_sum(r.input_tokens).label("input_tokens"),
            int_sum(r.output_tokens).label("output_tokens"),
        )
        .group_by(r.session_id)
        .subquery()
    )
    query = (
        select(
            SESSIONS,
            events,
            func.coalesce(totals.c.responses, 0).label("responses"),
            totals.c.input_tokens,
            totals.c.output_tokens,
            totals.c.total_tokens,
            CALLS.c.transport,  # a sideband's call: webrtc or sip
        )
        .outerjoin(totals, totals.c.session_id == SESSIONS.c.id)
        .outerjoin(CALLS, CALLS.c.id == SESSIONS.c.call_id)
        .where(*(has_property(name, value) for name, value in properties))
        .order_by(SESSIONS.c.started_at.desc(), SESSIONS.c.id.desc())
        .limit(limit)
    )
    rows = dicts(connection.execute(query))
    costs = session_costs(connection, [row["id"] for row in rows])
    return [row | costs[row["id"]] for row in rows]


def session_ids_starting(connection: Connection, prefix: str, limit: int = 2) -> list[str]:
    """Up to `limit` session ids that are `prefix` or start with it; an exact match comes first."""
    return ids_starting(connection, SESSIONS.c.id, prefix, limit)


def ids_starting(
    connection: Connection, ids: ColumnElement[str], prefix: str, limit: int
) -> list[str]:
    """Up to `limit` values of the id column `ids` that are `prefix` or start with it; an exact
    match comes first (alone)."""
    exact = connection.execute(select(ids).where(ids == prefix)).scalar()
    if exact is not None:
        return [exact]
    query = select(ids).where(ids.startswith(prefix, autoescape=True)).order_by(ids).limit(limit)
    return list(connection.execute(query).scalars())
