"""Session: one recorded session (`?session=ID`): conversation, usage, rate limits, events."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import data, detail, display, live_detail, ui
from dashboard.timeline import timeline
from protocol.apis import API_LIVE


def show(session_id: str) -> None:
    session = data.session(session_id)
    if session is None:  # pruned since the page opened
        st.title("Session")
        st.warning(f"There is no session {display.code(session_id)} in this database.")
        return
    version = data.session_version(session)
    detail.header(session)
    detail.downloads(session, version)
    if session["api"] == API_LIVE:
        show_live(session, version)
        return
    talk, usage, latency, limits, events = st.tabs(
        ["Conversation", "Usage", "Latency", "Rate limits", "Events"]
    )
    with talk:
        detail.conversation(session_id, version)
    with usage:
        detail.usage(session_id, version)
    with latency:
        detail.latency_waterfall(session_id, version)
    with limits:
        detail.rate_limits(session_id, version)
    with events:
        timeline(session_id, version)


def show_live(session: dict[str, Any], version: str) -> None:
    """GPT-Live: transcripts, per-second billing and delegations instead of responses' tokens."""
    view = data.live_detail(session["id"], version)
    live_detail.billing(view)
    talk, billed, latency, audio, events = st.tabs(live_detail.TABS)
    with talk:
        live_detail.conversation(view)
    with billed:
        live_detail.delegations(view)
    with latency:
        live_detail.latency_waterfall(view)
    with audio:
        live_detail.audio_tracks(session["id"], version)
    with events:
        timeline(session["id"], version)


typed = st.query_params.get("session", "").strip()
if not ui.empty_state():
    session_id, problem = ui.resolve_session(typed)
    if not typed:
        ui.pick_by_id("Session", "Sessions", "session")
    elif session_id is None:
        st.title("Session")
        st.warning(problem)
    else:
        if session_id != typed:  # a prefix: the address bar gets the full id, to bookmark
            st.query_params["session"] = session_id
        found = data.session(session_id)
        live = found is not None and found["ended_at"] is None
        # While the socket is open the page re-reads every few seconds; loaders key on `version`.
        st.fragment(run_every=data.LIVE_REFRESH_S if live else None)(show)(session_id)
