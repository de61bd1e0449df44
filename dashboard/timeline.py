"""The event timeline of one session: filters, pages, folded delta runs, expandable JSON."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import data, display

EVENTS_PER_PAGE = 100


def _filters(session_id: str, version: str) -> tuple[tuple[str, ...], tuple[str, ...], int]:
    counts = data.event_types(session_id, version)
    left, middle, right = st.columns([1, 3, 1])
    directions = left.multiselect("Direction", ["client", "server"], key="timeline_directions")
    present = counts[counts["direction"].isin(directions)] if directions else counts
    kinds = sorted(set(present["type"]))
    types = middle.multiselect("Event types", kinds, key="timeline_types", placeholder="all types")
    right.toggle("Fold deltas", value=True, key="timeline_fold")
    chosen = present[present["type"].isin(types)] if types else present
    return tuple(directions), tuple(types), int(chosen["events"].sum())


def _show_event(event: dict[str, Any]) -> None:
    with st.expander(display.event_label(event)):
        refs = {k: event[k] for k in ("event_id", "response_id", "item_id") if event.get(k)}
        if refs:
            st.caption(" · ".join(f"{k} {display.code(v)}" for k, v in refs.items()))
        if event["payload"] is None:
            st.caption("payload not recorded (`--record metadata`)")
        else:
            st.json(event["payload"], expanded=True)


def _show_run(events: list[dict[str, Any]]) -> None:
    with st.expander(display.run_label(events)):
        for event in events:
            st.caption(display.event_label(event))
            if event["payload"] is not None:
                st.json(event["payload"], expanded=False)


def timeline(session_id: str, version: str) -> None:
    directions, types, total = _filters(session_id, version)
    if total == 0:
        st.info("No events match.")
        return
    pages = max(1, -(-total // EVENTS_PER_PAGE))
    page = st.pagination(pages, key="timeline_page") if pages > 1 else 1
    st.caption(
        f"{total:,} events · page {page} of {pages} · `seq` order, times in UTC, then since the "
        "session started and Δ since the event before it in this list"
    )
    events = data.events(session_id, directions, types, page, EVENTS_PER_PAGE, version)
    if not st.session_state.get("timeline_fold", True):
        for event in events:
            _show_event(event)
        return
    for row in display.collapse_runs(events):
        if row["group"] and len(row["events"]) > 1:
            _show_run(row["events"])
        else:
            _show_event(row["events"][0])
