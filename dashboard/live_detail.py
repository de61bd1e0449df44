"""The sections of a GPT-Live session's page: billing, conversation, delegated work, latency and
both audio tracks (the data comes from `data.live_detail`)."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from analysis import latency
from dashboard import charts, data, display
from dashboard.detail import AVATARS

TABS = ["Conversation", "Billing & delegations", "Latency", "Audio", "Events"]


def _seconds(value: Any) -> str:
    return display.UNKNOWN if value is None else f"{float(value):.1f} s"


def billing(view: dict[str, Any]) -> None:
    """Billable seconds as the last cumulative usage event gave them, their cost and the end."""
    billed = view["billing"]
    columns = st.columns(4)
    columns[0].metric("Billable seconds", _seconds(billed["billable_seconds"]))
    columns[1].metric("Active / paused", _active_paused(billed))
    columns[2].metric("Seconds cost", display.usd(billed["seconds_cost_usd"]))
    ratio = billed["context_usage_ratio"]
    columns[3].metric("Context used", display.UNKNOWN if ratio is None else f"{ratio:.0%}")
    final = (
        "final usage from `session.closed`"
        if billed["usage_final"]
        else "no `session.closed` usage: the seconds are the last update, maybe not final"
    )
    # The reason is the server's word: shown as code, never as Markdown.
    reason = billed["end_reason"]
    st.markdown(f"End reason {display.code(reason) if reason else display.UNKNOWN} · {final}")


def _active_paused(billed: dict[str, Any]) -> str:
    active, paused = billed["active_seconds"], billed["paused_seconds"]
    if active is None and paused is None:
        return display.UNKNOWN
    shown = [display.UNKNOWN if v is None else f"{float(v):.1f}" for v in (active, paused)]
    return f"{shown[0]} / {shown[1]} s"


def conversation(view: dict[str, Any]) -> None:
    turns = view["turns"]
    if not turns:
        st.info("No transcript deltas were recorded in this session.")
        return
    for turn in turns:
        with st.chat_message(turn["role"], avatar=AVATARS.get(turn["role"])):
            st.text(turn["text"])  # a stranger's words: never live links or images
            number = f"turn {turn['number']} · " if turn["number"] else ""
            st.caption(f"{number}{display.timestamp(turn['ts'])}")


def delegations(view: dict[str, Any]) -> None:
    work, decided = view["work"], view["decisions"]
    if not work and not decided:
        st.info("No delegations or decisions in this session.")
        return
    st.caption("Delegated Responses and Decisions work, priced by its own model")
    shown = {
        "kind": st.column_config.TextColumn("kind", width=80),
        "target": st.column_config.TextColumn("target", width=80),
        "model": st.column_config.TextColumn("model", width=110),
        "status": st.column_config.TextColumn("status", width=80),
        "input_tokens": st.column_config.NumberColumn("in", width=60),
        "output_tokens": st.column_config.NumberColumn("out", width=60),
        "total_tokens": st.column_config.NumberColumn("total", width=60),
        "cost_usd": st.column_config.NumberColumn("cost", format="$%.6f", width=90),
        "delegation_id": st.column_config.TextColumn("delegation", width=130),
        "response_id": st.column_config.TextColumn("response_id", width=120),
    }
    st.dataframe(work, hide_index=True, column_order=list(shown), column_config=shown)
    if decided:
        st.caption("Decisions: what each `decision.event` answered")
        # A table cell is plain text: the answers as compact JSON, nothing rendered.
        st.dataframe(
            [d | {"answers": json.dumps(d["answers"], ensure_ascii=False)} for d in decided],
            hide_index=True,
        )


def latency_waterfall(view: dict[str, Any]) -> None:
    rows = view["waterfall"]
    if not rows:
        st.info("No assistant turns yet.")
        return
    st.caption(
        "Each assistant turn from the user's last transcript delta (speech stopped) to its first "
        "and last output audio (done), in ms; voice-to-voice: the end of the user's speech in "
        "the input audio to the assistant's first audio"
    )
    charts.waterfall(latency.segments(rows))
    timed = ("first audio", "done", "voice-to-voice")
    st.dataframe(
        [{"turn": r["turn"], **{m: display.millis(r[m]) for m in timed}} for r in rows],
        hide_index=True,
    )


def audio_tracks(session_id: str, version: str) -> None:
    sides = data.audio_sides(session_id, version)
    if not sides["user"] and not sides["assistant"]:
        st.info("No audio recorded (was it recorded with --record full?)")
        return
    for side, label in (("user", "User audio"), ("assistant", "Assistant audio")):
        st.caption(label)
        if sides[side]:
            st.audio(data.session_wav(session_id, side), format="audio/wav")
        else:
            st.markdown("_(none recorded)_")
