"""The sections of one session's page: header, conversation, usage, rate limits, downloads."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import streamlit as st

from analysis import latency
from dashboard import charts, data, display

# Material icons ship with Streamlit, so they render where no emoji font is installed.
AVATARS = {
    "user": ":material/person:",
    "assistant": ":material/smart_toy:",
    "tool": ":material/build:",
    "error": ":material/error:",
    "system": ":material/settings:",
}
TURNS_PER_PAGE = 50


def header(session: dict[str, Any]) -> None:
    status = display.session_status(session)
    badge = {"live": ":green-badge[● live]", "error": ":red-badge[error]"}.get(
        status, ":gray-badge[closed]"
    )
    st.title("Session")
    seconds = display.seconds_between(session["started_at"], session["ended_at"])
    # The model and close reason come from the client and the server: shown as text, not Markdown.
    model = display.escaped(session["model"]) if session["model"] else display.UNKNOWN
    st.code(session["id"], language=None)  # in full, with Streamlit's copy button
    replayed = session.get("replay_of")
    replay = ""
    if replayed:  # ids are rtrec's own (letters, digits, dashes): safe in a link
        compare = f"compare?a={replayed}&b={session['id']}"
        replay = f" · replay of {display.code(replayed)} ([compare]({compare}))"
    st.markdown(
        f"{badge} · **{model}** · "
        f"API {display.code(session['api'])} · "
        f"started {display.timestamp(session['started_at'])} · {display.duration(seconds)} · "
        f"close: {display.escaped(display.close_text(session))} · "
        f"recorded {display.code(session['record_mode'])}{replay}{_call_link(session)}"
    )
    columns = st.columns(5)
    columns[0].metric("Turns (responses)", display.count(session["responses"]))
    columns[1].metric("Total tokens", display.count(session["total_tokens"]))
    columns[2].metric(
        "Input / output tokens",
        f"{display.count(session['input_tokens'])} / {display.count(session['output_tokens'])}",
    )
    columns[3].metric("Cost", display.usd(session["cost_usd"]))
    columns[4].metric("Errors", display.count(session["errors"]))


def _call_link(session: dict[str, Any]) -> str:
    """` · sideband of call rtc_… (open)` for a session that watches a call, else nothing."""
    call_id = session.get("call_id")
    if not call_id:
        return ""
    role = display.escaped(session.get("call_role") or "sideband")
    # A call id comes from the upstream: quoted into the link, shown as code.
    return f" · {role} of call {display.code(call_id)} ([open](call?call={quote(call_id)}))"


def downloads(session: dict[str, Any], version: str) -> None:
    session_id = session["id"]
    columns = st.columns(4)
    columns[0].download_button(
        "Events (JSONL)",
        lambda: data.session_jsonl(session_id),
        file_name=f"{session_id}.jsonl",
        mime="application/x-ndjson",
        on_click="ignore",
    )
    sides = data.audio_sides(session_id, version)
    for column, side, label in (
        (columns[1], "both", "Audio, both sides (WAV)"),
        (columns[2], "user", "User audio (WAV)"),
        (columns[3], "assistant", "Assistant audio (WAV)"),
    ):
        if side == "both" and not (sides["user"] and sides["assistant"]):
            continue
        if side != "both" and not sides[side]:
            continue
        column.download_button(
            label,
            lambda side=side: data.session_wav(session_id, side),  # type: ignore[misc]
            file_name=f"{session_id}-{side}.wav",
            mime="audio/wav",
            on_click="ignore",
        )


def _turn_caption(turn: dict[str, Any]) -> str:
    if turn["role"] == "error":  # errors take no turn number
        return display.timestamp(turn["ts"])
    number = f"turn {turn['number']}" if turn["number"] is not None else "no response yet"
    parts = [number, display.timestamp(turn["ts"])]
    if turn["role"] == "assistant":
        usage = turn.get("usage") or {}
        parts += [
            display.token_split(usage),
            f"cost {display.usd(usage.get('cost_usd'))}",
            f"first audio {display.millis(usage.get('time_to_first_audio_ms'))}",
            f"first text {display.millis(usage.get('time_to_first_text_ms'))}",
        ]
        for label, key in (
            ("turn latency", "turn_latency_ms"),
            ("voice-to-voice", "voice_to_voice_ms"),
        ):
            if usage.get(key) is not None:
                parts.append(f"{label} {display.millis(usage[key])}")
    elif transcription := turn.get("transcription"):
        model = transcription.get("model")
        parts.append(
            f"transcribed by {display.escaped(model) if model else display.UNKNOWN}, "
            f"cost {display.usd(transcription.get('cost_usd'))}"
        )
    return " · ".join(parts)


def _status_badge(turn: dict[str, Any]) -> None:
    status = turn.get("status") or ""
    # The status is the server's words: only letters, digits and a few marks go into the badge.
    label = re.sub(r"[^\w ()-]", "", status)
    if status.startswith("barge-in"):
        st.markdown(f":orange-badge[{label}]")
    elif status.startswith(("cancelled", "failed", "incomplete", "in progress")):
        color = "red" if status.startswith("failed") else "gray"
        st.markdown(f":{color}-badge[{label}]")


def _error_body(turn: dict[str, Any]) -> None:
    error = turn.get("error") or {}
    st.markdown(
        f"**{display.escaped(error.get('type') or 'error')}** "
        f"{display.code(error.get('code') or display.UNKNOWN)}: "
        f"{display.escaped(error.get('message') or '')}"
    )
    cause, named = turn.get("cause"), error.get("event_id")
    if cause is not None:
        label = f"caused by client event #{cause['seq']} · {cause['type']}"
        with st.expander(display.escaped(label)):
            st.caption(f"event_id {display.code(cause['event_id'])} · see the Events tab")
            if cause["payload"] is not None:
                st.json(cause["payload"], expanded=True)
    elif named:
        st.caption(f"names client event {display.code(named)}, which was not recorded")
    st.caption(_turn_caption(turn))


def _turn_body(turn: dict[str, Any], session_id: str) -> None:
    if turn["role"] == "error":
        _error_body(turn)
        return
    if turn["role"] == "assistant":
        _status_badge(turn)
    if turn.get("text"):
        st.text(turn["text"])  # a stranger's transcript: never live links or images
    elif turn["kind"] in ("audio", "message") and not turn["tool_calls"]:
        st.markdown("_(no text recorded)_")
    for call in turn["tool_calls"]:
        st.markdown(
            f"Tool call **{display.escaped(call['name'])}** ({display.code(call['call_id'])})"
        )
        st.code(call["arguments"], language="json")
    if output := turn.get("tool_output"):
        st.markdown(f"Tool result for {display.code(output['call_id'])}")
        st.code(output["output"], language="json")
    if span := turn.get("audio"):
        key = (span["direction"], span["first_seq"], span["last_seq"], span.get("response_id"))
        wav = data.turn_audio(session_id, key)
        if wav:
            st.audio(wav, format="audio/wav")
    st.caption(_turn_caption(turn))


def conversation(session_id: str, version: str, key: str = "turns_page") -> None:
    """The session's turns, a page at a time; `key` names the pager (one per conversation)."""
    turns = data.turns(session_id, version)
    if not turns:
        st.info("No conversation yet: no items, responses or errors were recorded.")
        return
    pages = max(1, -(-len(turns) // TURNS_PER_PAGE))
    page = st.pagination(pages, key=key) if pages > 1 else 1
    for turn in turns[(page - 1) * TURNS_PER_PAGE : page * TURNS_PER_PAGE]:
        with st.chat_message(turn["role"], avatar=AVATARS.get(turn["role"])):
            _turn_body(turn, session_id)


def usage(session_id: str, version: str) -> None:
    responses = data.responses(session_id, version)
    if responses.empty:
        st.info("No responses yet.")
        return
    responses.insert(0, "turn", range(1, len(responses) + 1))
    left, right = st.columns(2)
    with left:
        st.caption("Input tokens per response: the context growing")
        charts.line(responses, "turn", ["input_tokens", "cached_tokens"], y_title="tokens")
    with right:
        st.caption("Cost per response (USD)")
        charts.line(responses, "turn", ["cost_usd"], y_title="USD")
    # The columns a reader compares across turns, narrow enough for a 1366 px screen; every
    # counter is in each answer's caption and in the JSONL download.
    shown = {
        "turn": st.column_config.NumberColumn("turn", width=40),
        "status": st.column_config.TextColumn("status", width=80),
        "input_tokens": st.column_config.NumberColumn("in", width=60),
        "cached_tokens": st.column_config.NumberColumn("cached", width=60),
        "input_audio_tokens": st.column_config.NumberColumn("in audio", width=65),
        "output_tokens": st.column_config.NumberColumn("out", width=60),
        "output_audio_tokens": st.column_config.NumberColumn("out audio", width=70),
        "cost_usd": st.column_config.NumberColumn("cost", format="$%.6f", width=80),
        "time_to_first_audio_ms": st.column_config.TextColumn("1st audio ms", alignment="right"),
        "time_to_first_text_ms": st.column_config.TextColumn("1st text ms", alignment="right"),
        "response_id": st.column_config.TextColumn("response_id", width=110),
    }
    for column in ("time_to_first_audio_ms", "time_to_first_text_ms"):  # "—", never "None"
        responses[column] = responses[column].map(display.whole)
    st.dataframe(responses, hide_index=True, column_order=list(shown), column_config=shown)


def rate_limits(session_id: str, version: str) -> None:
    limits = data.rate_limits(session_id, version)
    if limits.empty:
        st.info("No `rate_limits.updated` in this session.")
        return
    names = limits["name"].fillna("unnamed")
    for column, name in zip(st.columns(max(1, names.nunique())), sorted(set(names)), strict=False):
        with column:
            st.caption(f"{display.code(name)}: remaining vs limit")
            charts.line(
                limits[names == name], "ts", ["remaining", "limit_value"], x_type="temporal"
            )


def latency_waterfall(session_id: str, version: str) -> None:
    rows = data.waterfall(session_id, version)
    if not rows:
        st.info("No responses yet.")
        return
    st.caption(
        "Each turn from the server's `speech_stopped` (when its VAD ended the user's speech; "
        "otherwise from `response.created`) to the response's first text, first audio and "
        "`response.done`, in ms"
    )
    charts.waterfall(latency.segments(rows))
    st.caption(
        "p50/p95: median and 95th percentile over the turns · turn latency: end of the user's "
        "speech to first audio · voice-to-voice: the user stops speaking to the assistant's "
        "audio starting · — : not seen in this session"
    )
    # As text, right-aligned: a milestone or phase nobody saw reads "—", never "None".
    number = st.column_config.TextColumn(alignment="right")
    phases = latency.phase_percentiles(rows)
    st.dataframe(
        [
            p | {"p50_ms": display.whole(p["p50_ms"]), "p95_ms": display.whole(p["p95_ms"])}
            for p in phases
        ],
        hide_index=True,
        column_config={
            "p50_ms": st.column_config.TextColumn("p50 (ms)", alignment="right"),
            "p95_ms": st.column_config.TextColumn("p95 (ms)", alignment="right"),
        },
    )
    timed = (*latency.MILESTONES, "voice-to-voice")
    st.dataframe(
        [r | {m: display.whole(r[m]) for m in timed} for r in rows],
        hide_index=True,
        column_config=dict.fromkeys(timed, number),
    )
