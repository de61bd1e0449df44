"""Every read the dashboard makes: one cached read-only engine and cached loaders over storage.

Loaders return DataFrames or plain dicts. Each is keyed by the database URL (`RTREC_DB`) as well
as its arguments, so two databases never share a cache entry.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the dev group
import streamlit as st
from sqlalchemy import Connection, Engine

from analysis import diff, latency
from analysis import live as live_view
from analysis.call_lifecycle import lifecycle
from analysis.conversation import attach_causes, build_turns, error_event_ids
from analysis.export import event_line
from dashboard import audio, display
from handover.db_url import DEFAULT_DB_URL
from protocol.call_transport import TRANSPORT_EVENT_TYPES
from storage import browse, calls, detail, overview, properties, recording
from storage.db import (
    DatabaseOpenError,
    check_schema,
    masked_url,
    open_for_reading,
)

DB_ENV = "RTREC_DB"
LIVE_REFRESH_S = 3
TOTAL_COLUMNS = ("responses", "input_tokens", "output_tokens", "total_tokens", "cost_usd", "errors")
P = ParamSpec("P")
R = TypeVar("R")


def database_url() -> str:
    return os.environ.get(DB_ENV) or DEFAULT_DB_URL


def shown_url(url: str) -> str:
    """The URL as the page may show it: any password masked, however broken the URL is."""
    return masked_url(url)


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Engine:
    return open_for_reading(url)


@contextlib.contextmanager
def _reading(url: str) -> Iterator[Connection]:
    with _engine(url).connect() as connection:
        yield connection


def database_problem() -> str | None:
    """Why the database cannot be browsed (missing, unreadable, other schema), or None."""
    try:
        # The engine is cached; the schema is checked on every run, as another rtrec may upgrade it.
        check_schema(_engine(database_url()))
    except DatabaseOpenError as exc:
        return (
            f"Cannot read the database: {exc}. The proxy (`rtrec proxy`, `rtrec up` or "
            "`rtrec demo`) creates the database and upgrades its schema when it starts."
        )
    return None


def _loader(ttl: float) -> Callable[[Callable[Concatenate[str, P], R]], Callable[P, R]]:
    """Caches a `(url, …)` function for `ttl` seconds and calls it with the configured URL."""

    def wrap(function: Callable[Concatenate[str, P], R]) -> Callable[P, R]:
        cached = st.cache_data(ttl=ttl, show_spinner=False)(function)

        @functools.wraps(function)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            return cached(database_url(), *args, **kwargs)

        return call

    return wrap


def clear_caches() -> None:
    st.cache_data.clear()


def session_version(session: dict[str, Any]) -> str:
    """A cache key part that changes every few seconds while the session is live, never after."""
    if session.get("ended_at") is None:
        return f"live-{int(time.time() // LIVE_REFRESH_S)}"
    return str(session["ended_at"])


# ----------------------------------------------------------------------------- session list


@_loader(ttl=30)
def filter_choices(url: str) -> dict[str, Any]:
    with _reading(url) as connection:
        return browse.filter_choices(connection)


@_loader(ttl=5)
def session_count(url: str, session_filter: browse.SessionFilter) -> int:
    with _reading(url) as connection:
        return browse.count_sessions(connection, session_filter)


@_loader(ttl=5)
def matching_sessions(url: str, session_filter: browse.SessionFilter) -> list[str]:
    """Ids of the sessions the filter keeps, newest first (their count sizes the pager)."""
    with _reading(url) as connection:
        return browse.matching_session_ids(connection, session_filter)


@_loader(ttl=5)
def session_page(
    url: str, session_filter: browse.SessionFilter, page: int, page_size: int
) -> pd.DataFrame:
    """One page of the matching sessions with their totals."""
    ids = matching_sessions(session_filter)[(page - 1) * page_size : page * page_size]
    with _reading(url) as connection:
        rows = browse.sessions_with_totals(connection, ids)
    return pd.DataFrame(rows, columns=[*browse.SESSIONS.c.keys(), "transport", *TOTAL_COLUMNS])


# ----------------------------------------------------------------------------- one session


@_loader(ttl=2)
def session_ids_starting(url: str, prefix: str) -> list[str]:
    """The session id `prefix` names in full, else up to two ids that start with it."""
    with _reading(url) as connection:
        return browse.session_ids_starting(connection, prefix)


@_loader(ttl=2)
def session(url: str, session_id: str) -> dict[str, Any] | None:
    """The `sessions` row with its totals, or None when there is no such session."""
    with _reading(url) as connection:
        row = detail.get_session(connection, session_id)
        if row is None:
            return None
        return row | browse.session_totals(connection, [session_id])[session_id]


@_loader(ttl=600)
def turns(url: str, session_id: str, version: str) -> list[dict[str, Any]]:
    """The conversation; each error turn has `cause`, the client event it names, when found."""
    with _reading(url) as connection:
        found = build_turns(
            detail.conversation_events(connection, session_id),
            detail.session_responses(connection, session_id),
            detail.session_transcriptions(connection, session_id),
            detail.audio_index(connection, session_id),
        )
        causes = detail.client_events_by_id(connection, session_id, error_event_ids(found))
    attach_causes(found, causes)
    return found


@_loader(ttl=600)
def responses(url: str, session_id: str, version: str) -> pd.DataFrame:
    with _reading(url) as connection:
        return pd.DataFrame(detail.session_responses(connection, session_id))


@_loader(ttl=600)
def waterfall(url: str, session_id: str, version: str) -> list[dict[str, Any]]:
    """Each turn's latency milestones (see `analysis.latency.waterfall`)."""
    with _reading(url) as connection:
        responses = detail.session_responses(connection, session_id)
        stops = detail.speech_stops(connection, session_id)
    return latency.waterfall(responses, stops)


@_loader(ttl=600)
def live_detail(url: str, session_id: str, version: str) -> dict[str, Any]:
    """A GPT-Live session's transcript turns, delegated work, decisions, billing and waterfall."""
    with _reading(url) as connection:
        events = detail.live_events(connection, session_id)
        responses = detail.session_responses(connection, session_id)
        session = detail.get_session(connection, session_id) or {}
    return {
        "turns": live_view.transcript_turns(events),
        "work": live_view.delegated_work(events, responses),
        "decisions": live_view.decisions(events),
        "billing": live_view.billing(session),
        "waterfall": live_view.waterfall(responses),
    }


@_loader(ttl=600)
def rate_limits(url: str, session_id: str, version: str) -> pd.DataFrame:
    with _reading(url) as connection:
        rows = detail.session_rate_limits(connection, session_id)
    return pd.DataFrame(rows, columns=["ts", "name", "limit_value", "remaining", "reset_seconds"])


@_loader(ttl=600)
def event_types(url: str, session_id: str, version: str) -> pd.DataFrame:
    with _reading(url) as connection:
        rows = detail.event_type_counts(connection, session_id)
    return pd.DataFrame(rows, columns=["direction", "type", "events", "size_bytes"])


@_loader(ttl=600)
def events(
    url: str,
    session_id: str,
    directions: tuple[str, ...],
    types: tuple[str, ...],
    page: int,
    page_size: int,
    version: str,
) -> list[dict[str, Any]]:
    """A page of events, each with `since_start_s` (session start) and `since_previous_s` (the
    event before it in the same filtered list, None for the first)."""
    offset = (page - 1) * page_size
    before = 1 if offset else 0  # the previous page's last event, for the first gap
    with _reading(url) as connection:
        started_at = detail.get_session(connection, session_id)["started_at"]  # type: ignore[index]
        found = detail.events_page(
            connection, session_id, directions, types, page_size + before, offset - before
        )
    return display.relative_times(found, started_at)[before:]


@_loader(ttl=600)
def turn_audio(url: str, session_id: str, span: tuple[str, int, int, str | None]) -> bytes | None:
    """A playable WAV of one turn's audio: (direction, first seq, last seq, response id)."""
    direction, first, last, response_id = span
    with _reading(url) as connection:
        chunks = detail.audio_chunks(connection, session_id, direction, (first, last), response_id)
    return audio.chunks_to_wav(chunks, for_player=True)


def session_jsonl(session_id: str) -> bytes:
    """Every event of the session as JSONL in `seq` order, as `rtrec export` writes it."""
    with _reading(database_url()) as connection:
        return b"".join(event_line(e) for e in detail.session_events(connection, session_id))


def session_wav(session_id: str, side: str) -> bytes:
    """`user`, `assistant` or `both` (stereo) audio of the session as a WAV file at its rate."""
    with _reading(database_url()) as connection:
        user = detail.audio_chunks(connection, session_id, "client") if side != "assistant" else []
        bot = detail.audio_chunks(connection, session_id, "server") if side != "user" else []
    if side == "both":
        return audio.conversation_wav(user, bot) or b""
    return audio.chunks_to_wav(user or bot) or b""


@_loader(ttl=600)
def audio_sides(url: str, session_id: str, version: str) -> dict[str, int]:
    """Bytes of recorded audio per side (`user`, `assistant`)."""
    with _reading(url) as connection:
        index = detail.audio_index(connection, session_id)
    sides = {"user": 0, "assistant": 0}
    for chunk in index:
        sides["user" if chunk["direction"] == "client" else "assistant"] += chunk["size_bytes"]
    return sides


# ----------------------------------------------------------------------------- calls


@_loader(ttl=5)
def call_count(url: str) -> int:
    with _reading(url) as connection:
        return calls.count_calls(connection)


@_loader(ttl=5)
def call_page(url: str, page: int, page_size: int) -> pd.DataFrame:
    """One page of calls, newest first, with how many sessions watched each and their cost."""
    with _reading(url) as connection:
        rows = calls.list_calls(connection, page_size, (page - 1) * page_size)
    columns = [*calls.LISTED_COLUMNS, "sessions", "cost_usd"]
    return pd.DataFrame(rows, columns=columns)


@_loader(ttl=2)
def call_ids_starting(url: str, prefix: str) -> list[str]:
    with _reading(url) as connection:
        return calls.call_ids_starting(connection, prefix)


@_loader(ttl=2)
def call(url: str, call_id: str) -> dict[str, Any] | None:
    with _reading(url) as connection:
        return calls.get_call(connection, call_id)


@_loader(ttl=600)
def call_detail(url: str, call_id: str, version: str) -> dict[str, Any]:
    """A call's lifecycle (`analysis.call_lifecycle`) and the sessions that watched it."""
    with _reading(url) as connection:
        found = calls.get_call(connection, call_id) or {}
        sessions = calls.call_sessions(connection, call_id)
        requests = calls.call_events(connection, call_id)
        ids = [s["id"] for s in sessions]
        events = calls.session_events_of_types(connection, ids, TRANSPORT_EVENT_TYPES)
    steps = lifecycle(found, requests, events) if found else []
    return {"lifecycle": steps, "sessions": sessions}


# ----------------------------------------------------------------------------- overview

Span = tuple[datetime | None, datetime | None]


@_loader(ttl=30)
def daily_sessions(url: str, span: Span, bucket: str = "day") -> pd.DataFrame:
    """Sessions per `bucket` (day or hour) and model; the first column is named `bucket`."""
    with _reading(url) as connection:
        rows = overview.daily_sessions(connection, *span, bucket)
    return pd.DataFrame(rows, columns=[bucket, "model", "sessions", "open_sessions"])


@_loader(ttl=30)
def daily_usage(url: str, span: Span, bucket: str = "day") -> pd.DataFrame:
    with _reading(url) as connection:
        rows = overview.daily_usage(connection, *span, bucket)
    columns = [bucket, "model", "responses", *browse.TOKEN_COLUMNS, "cost_usd"]
    return pd.DataFrame(rows, columns=columns)


@_loader(ttl=30)
def daily_transcriptions(url: str, span: Span, bucket: str = "day") -> pd.DataFrame:
    with _reading(url) as connection:
        rows = overview.daily_transcription_cost(connection, *span, bucket)
    return pd.DataFrame(rows, columns=[bucket, "model", "transcriptions", "cost_usd", "seconds"])


@_loader(ttl=30)
def error_counts(url: str, span: Span) -> pd.DataFrame:
    with _reading(url) as connection:
        rows = overview.error_counts(connection, *span)
    columns = ["source", "error_type", "error_code", "count", "sessions"]
    return pd.DataFrame(rows, columns=columns)


@_loader(ttl=30)
def upgrade_failures(url: str, span: Span) -> pd.DataFrame:
    """Failed connection attempts (refused or unanswered upgrades), newest first."""
    with _reading(url) as connection:
        rows = overview.upgrade_failures(connection, *span)
    columns = ["ts", "status", "reason", "path", "upstream", "client_addr"]
    return pd.DataFrame(rows, columns=columns)


def _total(frame: pd.DataFrame, column: str) -> Any:
    """Sum of a column, None when every value is NULL (unknown is not zero)."""
    values = frame[column].dropna()
    if values.empty:
        return None
    total = values.sum()
    return total.item() if hasattr(total, "item") else total


def overview_totals(span: Span) -> dict[str, Any]:
    """Totals of the range, summed from the daily loaders (no query of its own)."""
    sessions, usage = daily_sessions(span), daily_usage(span)
    asr, errors = daily_transcriptions(span), error_counts(span)
    totals = {name: _total(usage, name) for name in (*browse.TOKEN_COLUMNS, "responses")}
    costs = [c for c in (_total(usage, "cost_usd"), _total(asr, "cost_usd")) if c is not None]
    return totals | {
        "sessions": int(sessions["sessions"].sum()),
        "open_sessions": int(sessions["open_sessions"].sum()),
        "transcriptions": int(asr["transcriptions"].sum()),
        "cost_usd": sum(costs) if costs else None,
        "error_events": int(errors.loc[errors["source"] == "error event", "count"].sum()),
        "failed_responses": int(errors.loc[errors["source"] == "failed response", "count"].sum()),
    }


def daily_cost(span: Span, bucket: str = "day") -> pd.DataFrame:
    """Cost per day (or hour) and model; transcription models are marked `(transcription)`."""
    usage = daily_usage(span, bucket)[[bucket, "model", "cost_usd"]]
    asr = daily_transcriptions(span, bucket)[[bucket, "model", "cost_usd"]]
    asr = asr.assign(model=asr["model"].fillna("unknown") + " (transcription)")
    frame = pd.concat([usage.assign(model=usage["model"].fillna("unknown")), asr])
    return frame.dropna(subset=["cost_usd"]).reset_index(drop=True)


def _percentile(ms: pd.Series, counts: pd.Series, share: float) -> float:
    reached = counts.cumsum() >= share * counts.sum()
    return float(ms[reached].iloc[0])


@_loader(ttl=30)
def latency_percentiles(url: str, span: Span) -> pd.DataFrame:
    """p50/p90/p99 and max (ms, to the ms) per model of each latency `overview` measures."""
    with _reading(url) as connection:
        rows = overview.latency_histogram(connection, *span)
    columns = ["model", "latency", "responses", "p50", "p90", "p99", "max"]
    found = []
    histogram = pd.DataFrame(rows, columns=["latency", "model", "ms", "responses"])
    histogram["model"] = histogram["model"].fillna("unknown")
    for (model, measure), group in histogram.sort_values("ms").groupby(["model", "latency"]):
        ms, counts = group["ms"].reset_index(drop=True), group["responses"]
        counts = counts.reset_index(drop=True)
        quantiles = [_percentile(ms, counts, q) for q in (0.5, 0.9, 0.99)]
        found.append([model, measure, int(counts.sum()), *quantiles, float(ms.iloc[-1])])
    return pd.DataFrame(found, columns=columns)


@_loader(ttl=30)
def daily_rate_limits(url: str, span: Span, bucket: str = "day") -> pd.DataFrame:
    with _reading(url) as connection:
        rows = overview.daily_rate_limits(connection, *span, bucket)
    columns = [bucket, "name", "lowest_remaining", "limit_value", "updates"]
    frame = pd.DataFrame(rows, columns=columns)
    limit = frame["limit_value"].where(frame["limit_value"] > 0)
    frame["headroom_pct"] = 100 * frame["lowest_remaining"] / limit
    return frame


# ----------------------------------------------------------------------------- properties


@_loader(ttl=30)
def property_choices(url: str) -> dict[str, list[str]]:
    """Property names with their most used values, for the filter and the group-by."""
    with _reading(url) as connection:
        return properties.property_choices(connection)


@_loader(ttl=30)
def usage_by_property(url: str, name: str, span: Span) -> pd.DataFrame:
    with _reading(url) as connection:
        rows = properties.usage_by_property(connection, name, *span)
    columns = ["value", "sessions", "responses", "input_tokens", "output_tokens"]
    columns += ["total_tokens", "cost_usd"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["value"] = frame["value"].fillna("(not set)")
    return frame.rename(columns={"value": name})


# ----------------------------------------------------------------------------- two sessions


@_loader(ttl=600)
def comparison(url: str, session_a: str, session_b: str) -> dict[str, Any] | str:
    """`rtrec diff`'s report for two sessions, or which of them is not in the database."""
    with _reading(url) as connection:
        a = recording.session_summary(connection, session_a)
        b = recording.session_summary(connection, session_b)
    if a is None or b is None:
        return f"No session {session_a if a is None else session_b!r} in this database."
    return diff.compare(a, b)
