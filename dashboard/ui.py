"""Widgets the pages share: the empty state, time spans, the session filters and the list."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs in the dev group
import streamlit as st

from dashboard import data, display
from handover.options import LISTEN_PORT
from storage.browse import SESSION_STATUSES, SessionFilter

SPANS = {
    "Last hour": timedelta(hours=1),
    "Last 24 hours": timedelta(days=1),
    "Last 7 days": timedelta(days=7),
    "Last 30 days": timedelta(days=30),
    "Last 90 days": timedelta(days=90),
    "Any time": None,
    "Custom dates": None,
}
STATUS_LABELS = {"live": "● live", "closed": "closed", "error": "error"}
ERROR_STYLE = "background-color: rgba(255, 43, 43, 0.16)"
ID_SHOWN = 13  # a UUIDv7's millisecond clock: unique unless two sessions start in one ms
# Pixels per column: the list fits the 900 px a 1366 px screen leaves beside the filter sidebar.
COLUMN_WIDTHS = {
    "started (UTC)": 112,
    "duration": 58,
    "model": 132,
    "api": 36,
    "turns": 44,
    "tokens": 54,
    "cost": 64,
    "errors": 44,
    "close": 94,  # "● live" while open: the status, which the hidden `status` column holds
}
SHOWN_COLUMNS = ["open", *COLUMN_WIDTHS]
CALL_ID_SHOWN = 8  # `rtc_` or `live_` and a few characters: enough to tell a page's calls apart
CALL_COLUMN_PX = 132  # `webrtc:` and those; with it (not "replay of") the list still fits 900 px


def proxy_client_line() -> str:
    """How to point a client at the proxy, on the port it listens on: `rtrec up` and the
    environment pass `RTREC_LISTEN_PORT` down to the dashboard; a bad value shows the default."""
    try:
        port = LISTEN_PORT.parse(os.environ.get(LISTEN_PORT.env_var(), ""))
    except ValueError:
        port = LISTEN_PORT.default
    return f"OPENAI_BASE_URL=http://127.0.0.1:{port}/v1 python my_voice_agent.py"


def empty_state() -> bool:
    """Explains how to record something when the database holds no session; True if so."""
    if data.session_count(SessionFilter()) > 0:
        return False
    st.info(
        f"No sessions recorded yet in `{data.shown_url(data.database_url())}`.\n\n"
        "Point a Realtime client at the proxy (started by `rtrec proxy` or `rtrec up`):\n"
        f"```sh\n{proxy_client_line()}\n```\n"
        "or run `rtrec demo` to record a few scripted sessions against the local simulator. "
        "Sessions show up here while they run."
    )
    failures = data.upgrade_failures((None, None))
    if not failures.empty:  # the usual reason for no sessions: the upstream said no
        st.warning(
            f"{len(failures)} connection attempt(s) failed before a session could open; "
            "the newest first:"
        )
        st.dataframe(failures, hide_index=True)
    return True


def _minute_now() -> datetime:
    # Rounded so that reruns within a minute hit the same cache entries.
    return datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)


def span_picker(key: str, default: str, container: Any = st) -> data.Span:
    """A (start, end) UTC span chosen from presets or a custom date range."""
    choice = container.selectbox(
        "Time range", list(SPANS), index=list(SPANS).index(default), key=key
    )
    if choice == "Custom dates":
        today = datetime.now(UTC).date()
        picked = container.date_input(
            "From – to (UTC)", (today - timedelta(days=7), today), key=f"{key}_dates"
        )
        days = [d for d in picked if isinstance(d, date)] if isinstance(picked, tuple) else []
        if len(days) == 2:
            start = datetime.combine(days[0], time(), UTC)
            return start, datetime.combine(days[1] + timedelta(days=1), time(), UTC)
        return None, None
    delta = SPANS[choice]
    return (None, None) if delta is None else (_minute_now() - delta, None)


def session_filters() -> SessionFilter:
    """The sidebar filters of the session list."""
    choices = data.filter_choices()
    sidebar = st.sidebar
    sidebar.header("Filters")
    start, end = span_picker("sessions_span", "Any time", sidebar)
    search = sidebar.text_input("Search transcripts and text", key="sessions_search")
    models = sidebar.multiselect("Model", choices["models"], key="sessions_models")
    apis = sidebar.multiselect("API", choices["apis"], key="sessions_apis")
    statuses = sidebar.multiselect(
        "Status", list(SESSION_STATUSES), key="sessions_status", help="error: abnormal close code"
    )
    has_errors = sidebar.checkbox("Has errors", key="sessions_errors")
    min_cost = sidebar.number_input(
        "Min cost (USD)", min_value=0.0, value=0.0, step=0.01, format="%.4f", key="sessions_cost"
    )
    return SessionFilter(
        properties=property_filter(sidebar),
        started_from=start,
        started_before=end,
        models=tuple(models),
        apis=tuple(apis),
        statuses=tuple(statuses),
        has_errors=has_errors,
        min_cost_usd=min_cost or None,
        search=search.strip(),
    )


def property_filter(where: Any) -> tuple[tuple[str, str], ...]:
    """A property name and one of its values (`Rtrec-Property-*` tags), when any are recorded."""
    choices = data.property_choices()
    if not choices:
        return ()
    name = where.selectbox("Property", list(choices), index=None, key="sessions_property")
    if name is None:
        return ()
    value = where.selectbox(f"{name} =", choices[name], index=None, key="sessions_property_value")
    return () if value is None else ((name, value),)


def sessions_table(page: Any) -> Any:
    """The list's columns as shown: status, times, duration, turns, tokens, cost, close."""
    rows = page.to_dict("records")
    return {
        "open": [f"session?session={r['id']}" for r in rows],
        "session": [r["id"] for r in rows],  # not shown: the link's text is its first characters
        "status": [STATUS_LABELS[display.session_status(r)] for r in rows],
        "started (UTC)": [display.timestamp(r["started_at"])[:16] for r in rows],  # to the minute
        "duration": [
            display.duration(display.seconds_between(r["started_at"], r["ended_at"])) for r in rows
        ],
        "model": [r["model"] or display.UNKNOWN for r in rows],
        "api": [r["api"] for r in rows],
        "turns": [int(r["responses"]) for r in rows],
        "tokens": [display.count(r["total_tokens"]) for r in rows],
        "cost": [display.usd(r["cost_usd"]) for r in rows],
        "errors": [int(r["errors"]) for r in rows],
        "close": [
            STATUS_LABELS["live"] if display.session_status(r) == "live" else display.close_text(r)
            for r in rows
        ],
        "replay of": [
            r["replay_of"][:ID_SHOWN] if isinstance(r["replay_of"], str) else ""
            for r in rows  # pandas makes a NULL NaN
        ],
        "call": [call_text(r) for r in rows],
    }


def call_text(session: dict[str, Any]) -> str:
    """A sideband's call as `sip:rtc_012345` (as `rtrec sessions` writes it): its transport and
    the start of its id."""
    call_id = session.get("call_id")
    if not isinstance(call_id, str):  # pandas makes a NULL NaN
        return ""
    transport = session.get("transport")
    via = transport if isinstance(transport, str) else "call"  # a call rtrec never saw made
    return f"{via}:{call_id[:CALL_ID_SHOWN]}"


def error_rows(table: dict[str, list[Any]]) -> Any:
    """The list as a styled frame: sessions with error events, failed responses or an abnormal
    close get a red background, so they stand out on a long page."""
    frame = pd.DataFrame(table)

    def paint(row: Any) -> list[str]:
        bad = row["errors"] > 0 or row["status"] == STATUS_LABELS["error"]
        return [ERROR_STYLE if bad else ""] * len(row)

    return frame.style.apply(paint, axis=1)


def show_sessions(page: Any, key: str) -> str | None:
    """Renders one page of sessions; returns the id of a row the user selected."""
    table = sessions_table(page)
    config: dict[str, Any] = {
        name: st.column_config.Column(name, width=width) for name, width in COLUMN_WIDTHS.items()
    }
    config["open"] = st.column_config.LinkColumn(
        "session",
        display_text=f"session=(.{{1,{ID_SHOWN}}})",  # the id's start, a prefix every page takes
        width=100,
        help="Opens the session; its page shows the full id with a copy button",
    )
    config["replay of"] = st.column_config.TextColumn(
        "replay of",
        width=96,
        help="The session this one replays (`rtrec replay`); its page links to Compare",
    )
    config["call"] = st.column_config.TextColumn(
        "call",
        width=CALL_COLUMN_PX,
        help="The call this sideband watches (transport:call id); its page links to the call",
    )
    # Only a page holding replays or a call's sideband gets their column: 1366 px fit either.
    shown = [*SHOWN_COLUMNS]
    shown += [name for name in ("replay of", "call") if any(table[name])]
    event = st.dataframe(
        error_rows(table),
        hide_index=True,
        height=35 * (len(table["session"]) + 1) + 3,  # every row of the page, no inner scroll
        on_select="rerun",
        selection_mode="single-row",
        key=key,
        column_config=config,  # sized to fit a 1366 px screen with the filter sidebar open
        column_order=shown,
    )
    rows = event.selection.rows if event is not None else []
    return str(table["session"][rows[0]]) if rows else None


def resolve_session(typed: str) -> tuple[str | None, str]:
    """The session id a full id or a unique prefix names, else None and why (as Markdown)."""
    return named_by(typed, data.session_ids_starting(typed) if typed else [], "session")


def named_by(typed: str, found: list[str], noun: str) -> tuple[str | None, str]:
    """The one id of `found` (the ids `typed` names in full or starts), else None and why."""
    if len(found) == 1:
        return found[0], ""
    if not found:
        return None, f"There is no {noun} {display.code(typed)} in this database."
    return None, f"{display.code(typed)} starts more than one {noun} id: give more of it."


def link_to_session(session_id: str) -> None:
    st.switch_page("app_pages/session.py", query_params={"session": session_id})


def usage_by_property(span: Any) -> None:
    """Cost and tokens grouped by the values of one property (Overview)."""
    choices = data.property_choices()
    if not choices:
        return
    st.subheader("Cost and tokens by property")
    name = st.selectbox("Group by property", list(choices), key="overview_property")
    if name is not None:
        st.dataframe(data.usage_by_property(name, span), hide_index=True)


def pick_by_id(noun: str, listing: str, param: str) -> None:
    """A page opened without `?param=ID`: ask for the id, then open it by its query parameter."""
    st.title(noun)
    st.write(f"Open a {noun.lower()} by its id, or pick one from the **{listing}** page.")
    typed = st.text_input(f"{noun} id", key=f"{param}_id_input")
    if typed.strip():
        st.query_params[param] = typed.strip()
        st.rerun()
