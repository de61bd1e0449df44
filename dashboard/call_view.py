"""The Calls pages' widgets: the list of calls, one call's header, its lifecycle and the
conversation of the sessions that watched it (drawn as the Session page draws it)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import streamlit as st

from dashboard import data, detail, display, live_detail, ui
from protocol.apis import API_LIVE

CALL_ID_SHOWN = 20  # `rtc_` plus sixteen: the whole id is on the call's page, with a copy button
# Pixels per column: the list fits the 900 px a 1366 px screen leaves beside the navigation.
COLUMN_WIDTHS = {
    "api": 40,
    "transport": 66,
    "model": 116,
    "status": 62,
    "end": 104,
    "started (UTC)": 112,
    "duration": 58,
    "cost": 64,
    "sessions": 64,
}
STATUS_BADGES = {"active": "green", "ringing": "orange", "failed": "red", "rejected": "red"}


def calls_table(page: Any) -> dict[str, list[Any]]:
    """The calls as shown: a link to each, its API, transport, model, status, times and cost."""
    rows = page.to_dict("records")
    return {
        "open": [f"call?call={quote(r['id'])}" for r in rows],  # the upstream named the call
        "id": [r["id"] for r in rows],  # not shown: the link's text is its first characters
        "api": [r["api"] for r in rows],
        "transport": [r["transport"] or display.UNKNOWN for r in rows],
        "model": [r["model"] or display.UNKNOWN for r in rows],
        "status": [r["status"] or display.UNKNOWN for r in rows],
        "end": [r["end_reason"] if isinstance(r["end_reason"], str) else "" for r in rows],
        "started (UTC)": [display.timestamp(r["created_at"])[:16] for r in rows],  # to the minute
        "duration": [call_duration(r) for r in rows],
        "cost": [display.usd(r["cost_usd"]) for r in rows],
        "sessions": [int(r["sessions"]) for r in rows],
    }


def call_duration(call: dict[str, Any]) -> str:
    """From the answer (or first sighting) to the end; a call not yet ended runs to now."""
    answered = call.get("answered_at")
    start = call["created_at"] if answered is None or answered != answered else answered
    return display.duration(display.seconds_between(start, call.get("ended_at")))


def show_calls(page: Any, key: str) -> None:
    table = calls_table(page)
    config: dict[str, Any] = {
        name: st.column_config.Column(name, width=width) for name, width in COLUMN_WIDTHS.items()
    }
    config["open"] = st.column_config.LinkColumn(
        "call",
        display_text=f"call=(.{{1,{CALL_ID_SHOWN}}})",
        width=160,
        help="Opens the call: its lifecycle, its sessions' conversation, the full id to copy",
    )
    st.dataframe(
        table,
        hide_index=True,
        height=35 * (len(table["id"]) + 1) + 3,  # every row of the page, no inner scroll
        key=key,
        column_config=config,
        column_order=["open", *COLUMN_WIDTHS],
    )


def resolve_call(typed: str) -> tuple[str | None, str]:
    """The call id a full id or a unique prefix names, else None and why (as Markdown)."""
    return ui.named_by(typed, data.call_ids_starting(typed) if typed else [], "call")


def header(call: dict[str, Any], sessions: int) -> None:
    st.title("Call")
    st.code(call["id"], language=None)  # in full, with Streamlit's copy button
    status = call["status"] or "unknown"
    badge = f":{STATUS_BADGES.get(status, 'gray')}-badge[{display.escaped(status)}]"
    model = display.escaped(call["model"]) if call["model"] else display.UNKNOWN
    reason = call["end_reason"]
    ended = f" · ended: {display.escaped(reason)}" if reason else ""
    st.markdown(
        f"{badge} · **{model}** · API {display.code(call['api'])} · "
        f"transport {display.code(call['transport'] or display.UNKNOWN)} · "
        f"created {display.timestamp(call['created_at'])}{ended}"
    )
    columns = st.columns(4)
    columns[0].metric("Duration", call_duration(call))
    columns[1].metric("Cost", display.usd(call["cost_usd"]))
    columns[2].metric("Sessions", f"{sessions}")
    columns[3].metric("Audio recorded", "yes" if call["audio_recorded"] else "no")


def lifecycle(steps: list[dict[str, Any]]) -> None:
    st.subheader("Lifecycle")
    if not steps:
        st.info("Nothing recorded of this call's life yet.")
        return
    st.caption(
        "Times in UTC · from: a control request through rtrec, a sideband's line event, "
        "or what rtrec saw of the call"
    )
    shown = [
        {
            "time": display.clock(s["ts"]),
            "step": s["step"],
            "detail": s["detail"],
            "from": s["source"],
        }
        for s in steps
    ]
    # A table cell is plain text: a refer's number or a failure's words are never Markdown.
    st.dataframe(
        shown,
        hide_index=True,
        column_config={
            "time": st.column_config.TextColumn("time", width=92),
            "step": st.column_config.TextColumn("step", width=104),
            "detail": st.column_config.TextColumn("detail", width=134),
            "from": st.column_config.TextColumn("from", width=74),
        },
    )


def conversations(sessions: list[dict[str, Any]]) -> None:
    """Each session of the call (a tab each), its conversation as the Session page shows it."""
    st.subheader("Conversation")
    if not sessions:
        st.info(
            "No session watched this call: its events are seen only through a sideband "
            "(the application's own through rtrec, or rtrec's with `--observe-calls`)."
        )
        return
    labels = [f"{s['call_role'] or 'session'} · {s['id'][:13]}" for s in sessions]
    for tab, session in zip(st.tabs(labels), sessions, strict=True):
        with tab:
            version = data.session_version(session)
            # Session ids are rtrec's own (letters, digits, dashes): safe in a link.
            st.markdown(
                f"[Open session {display.code(session['id'])}](session?session={session['id']})"
            )
            if session["api"] == API_LIVE:
                live_detail.conversation(data.live_detail(session["id"], version))
            else:
                detail.conversation(session["id"], version, key=f"turns_{session['id']}")
