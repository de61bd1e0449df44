"""Two recorded sessions compared turn by turn, as plain dicts in and out (`rtrec diff`, the
dashboard's Compare page).

A turn is one model response, in the order the responses finished. Input is what
`storage.recording.session_summary` returns; nothing here reads a database.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from typing import Any

import protocol
from analysis import live as live_view
from analysis.stats import percentile
from protocol import live
from protocol.apis import API_LIVE

LATENCIES = {
    "ttfa": "time_to_first_audio_ms",
    "ttft": "time_to_first_text_ms",
    "turn": "turn_latency_ms",
    "v2v": "voice_to_voice_ms",
}
TOKEN_TOTALS = ("input_tokens", "output_tokens", "total_tokens")
# GPT-Live bills seconds: these join the metrics when either session is a GPT-Live one.
BILLED_SECONDS = ("billable_seconds", "active_seconds", "paused_seconds")
# Every token count `diff` compares, as `responses` columns; the metric drops `_tokens`'s `total_`.
TOKEN_KINDS = (
    *TOKEN_TOTALS,
    "input_text_tokens",
    "input_audio_tokens",
    "cached_tokens",
    "output_text_tokens",
    "output_audio_tokens",
)
# Content part types that carry each output modality (GA names first, then beta's).
_MODALITY_OF_PART = {
    "output_text": "text",
    "text": "text",
    "output_audio": "audio",
    "audio": "audio",
}


def similarity(a: str, b: str) -> float:
    """1.0 for equal texts, towards 0.0 as they differ (difflib's ratio, rounded)."""
    if a == b:
        return 1.0
    return round(difflib.SequenceMatcher(None, a, b, autojunk=False).ratio(), 4)


def _arguments(raw: Any) -> Any:
    """Tool arguments as a value, so `{"a":1}` and `{"a": 1}` compare equal."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _output(response: dict[str, Any]) -> tuple[str, list[str], list[dict[str, Any]]]:
    """(assistant text or audio transcript, output modalities, tool calls) of a `response`."""
    texts, modalities, calls = [], set(), []
    for item in response.get("output") or []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call":
            calls.append({"name": item.get("name"), "arguments": _arguments(item.get("arguments"))})
        for part in item.get("content") or []:
            if isinstance(part, dict):
                if part.get("type") in _MODALITY_OF_PART:
                    modalities.add(_MODALITY_OF_PART[part["type"]])
                text = part.get("text") or part.get("transcript")
                if isinstance(text, str):
                    texts.append(text)
    return " ".join(texts), sorted(modalities), calls


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _nth(items: list[dict[str, Any]], index: int) -> dict[str, Any] | None:
    return items[index] if index < len(items) else None


def _is_live(summary: dict[str, Any]) -> bool:
    return bool(summary["session"].get("api") == API_LIVE)


def live_turns(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """A GPT-Live session's assistant turns: the transcript of each, with the latencies of the
    `live-turn-N` response derived from its audio (a turn has no tokens of its own)."""
    rows = [r for r in summary["responses"] if live_view.is_turn(r)]
    spoken = [t for t in live_view.transcript_turns(summary["events"]) if t["number"]]
    found = []
    for index in range(max(len(rows), len(spoken))):
        row = _nth(rows, index) or {}
        said = _nth(spoken, index) or {}
        turn: dict[str, Any] = {
            "status": row.get("status"),
            "text": said.get("text") or "",
            "modalities": [],  # a GPT-Live turn is spoken; its output parts are not recorded
            "tool_calls": [],
            "audio_ms": None,
        }
        turn.update({c: row.get(c) for c in (*TOKEN_KINDS, "cost_usd", *LATENCIES.values())})
        found.append(turn)
    return found


def turns(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per finished response: status, text, modalities, tool calls, usage, cost,
    latencies and audio milliseconds (None when the recording kept no audio)."""
    if _is_live(summary):
        return live_turns(summary)
    rows = {r["response_id"]: r for r in summary["responses"]}
    audio_ms = summary.get("audio_ms")
    has_audio = summary["session"].get("record_mode") == "full" and audio_ms is not None
    found = []
    for event in summary["events"]:
        payload = event.get("payload")
        if event["type"] != protocol.RESPONSE_DONE or not isinstance(payload, dict):
            continue
        response = _dict(payload.get("response"))
        row = rows.get(response.get("id"), {})
        text, modalities, calls = _output(response)
        turn = {"status": response.get("status") or row.get("status"), "text": text}
        turn.update(modalities=modalities, tool_calls=calls)
        turn.update({c: row.get(c) for c in (*TOKEN_KINDS, "cost_usd", *LATENCIES.values())})
        turn["audio_ms"] = (audio_ms or {}).get(response.get("id"), 0.0) if has_audio else None
        found.append(turn)
    return found


def _errors(summary: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in summary["events"]:
        payload = event.get("payload")
        if event["type"] == protocol.ERROR or event["type"] in live.ERROR_EVENTS:
            error = payload.get("error") if isinstance(payload, dict) else None
            code = (error or {}).get("code") or (error or {}).get("type") or "unknown"
            counts[str(code)] = counts.get(str(code), 0) + 1
    for row in summary["responses"]:
        if row.get("status") == "failed":
            code = f"response {row.get('error_code') or row.get('error_type') or 'failed'}"
            counts[code] = counts.get(code, 0) + 1
    return counts


def _sum(values: Sequence[Any]) -> float | int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _token_metric(column: str) -> str:
    return "tokens" if column == "total_tokens" else column


def session_cost(summary: dict[str, Any]) -> float | None:
    """The session's cost (storage/cost.py), None when unknown: some usage had no price."""
    cost = summary.get("cost") or {}
    return None if cost.get("unpriced") else float(cost.get("cost_usd") or 0.0)


def metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """The session-level numbers thresholds apply to (`cost`, `tokens`, `ttfa_p95`, …)."""
    responses = summary["responses"]
    session_turns = turns(summary)
    found: dict[str, Any] = {"turns": len(session_turns), "cost": session_cost(summary)}
    for column in TOKEN_KINDS:
        found[_token_metric(column)] = _sum([r.get(column) for r in responses])
    found["audio_ms"] = _sum([t["audio_ms"] for t in session_turns])
    found["billable_seconds"] = summary["session"].get("billable_seconds")  # GPT-Live's
    found["errors"] = sum(_errors(summary).values())
    for short, column in LATENCIES.items():
        values = [r[column] for r in responses if r.get(column) is not None]
        found[f"{short}_p50"] = percentile(values, 0.5)
        found[f"{short}_p95"] = percentile(values, 0.95)
    if _is_live(summary):
        found.update({name: summary["session"].get(name) for name in BILLED_SECONDS})
    return found


def _turn_diff(index: int, a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any]:
    empty: dict[str, Any] = {"status": None, "text": "", "modalities": [], "tool_calls": []}
    left, right = a or empty, b or empty
    keys: tuple[str, ...] = ("status", "text", "modalities", "tool_calls", *TOKEN_KINDS)
    keys = (*keys, "cost_usd", "audio_ms", *LATENCIES.values())
    diff: dict[str, Any] = {"turn": index + 1, "only_in": None if a and b else ("a" if a else "b")}
    diff.update({key: [left.get(key), right.get(key)] for key in keys})
    diff["text_similarity"] = similarity(left["text"], right["text"])
    diff["tool_calls_changed"] = left["tool_calls"] != right["tool_calls"]
    return diff


def _user_text(summary: dict[str, Any]) -> str:
    """What the user said: transcriptions, or a GPT-Live session's input transcript deltas."""
    if _is_live(summary):
        said = live_view.transcript_turns(summary["events"])
        return " ".join(t["text"] for t in said if t["role"] == "user")
    return " ".join(t.get("transcript") or "" for t in summary["transcriptions"])


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The report `rtrec diff --json` prints: per turn, totals, latencies, errors, flags."""
    turns_a, turns_b = turns(a), turns(b)
    pairs = [
        _turn_diff(
            i, turns_a[i] if i < len(turns_a) else None, turns_b[i] if i < len(turns_b) else None
        )
        for i in range(max(len(turns_a), len(turns_b)))
    ]
    errors_a, errors_b = _errors(a), _errors(b)
    user_a, user_b = _user_text(a), _user_text(b)
    text_a = " ".join(t["text"] for t in turns_a)
    text_b = " ".join(t["text"] for t in turns_b)
    metrics_a, metrics_b = metrics(a), metrics(b)
    flags = {
        "model_changed": a["session"].get("model") != b["session"].get("model"),
        "modalities_changed": [t["modalities"] for t in turns_a]
        != [t["modalities"] for t in turns_b],
        "turns_changed": len(turns_a) != len(turns_b),
        "statuses_changed": [t["status"] for t in turns_a] != [t["status"] for t in turns_b],
        "tool_calls_changed": any(p["tool_calls_changed"] for p in pairs),
        "errors_changed": errors_a != errors_b,
        "text_changed": text_a != text_b,
        "close_changed": _close(a) != _close(b),
    }
    structure_keys = (
        "turns_changed",
        "statuses_changed",
        "modalities_changed",
        "tool_calls_changed",
        "errors_changed",
    )
    return {
        "a": _identity(a),
        "b": _identity(b),
        "structure_equal": not any(flags[k] for k in structure_keys),
        **flags,
        "text_similarity": similarity(text_a, text_b),
        "transcript_similarity": similarity(user_a, user_b),
        "metrics": {
            name: [metrics_a.get(name), metrics_b.get(name)]
            for name in dict.fromkeys([*metrics_a, *metrics_b])
        },
        "cost_unknown": [session_cost(a) is None, session_cost(b) is None],
        "errors": {"a": errors_a, "b": errors_b},
        "turns": pairs,
    }


def _identity(summary: dict[str, Any]) -> dict[str, Any]:
    session = summary["session"]
    return {
        "id": session["id"],
        "model": session.get("model"),
        "api": session.get("api"),
        "record_mode": session.get("record_mode"),
        "replay_of": session.get("replay_of"),
        "close_code": session.get("close_code"),
        "close_reason": session.get("close_reason"),
        "properties": summary.get("properties", {}),
    }


def _close(summary: dict[str, Any]) -> tuple[Any, Any]:
    """How the session ended: close code and reason (not who closed: a replay's client does)."""
    session = summary["session"]
    return session.get("close_code"), session.get("close_reason")
