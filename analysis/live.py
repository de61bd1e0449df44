"""A recorded GPT-Live session as people read it: turns from the transcript deltas, delegated
work with its tokens and cost, billable seconds, and each turn's latency milestones.

Pure functions over the rows `storage.detail` returns (events as dicts with `seq`, `ts`, `type`,
`payload`); event types are named only through `protocol.live`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from analysis.stats import as_utc
from protocol import live

BILLING_COLUMNS = (
    "billable_seconds",
    "active_seconds",
    "paused_seconds",
    "seconds_cost_usd",
    "context_usage_ratio",
    "usage_final",
    "end_reason",
)
DELEGATED_COLUMNS = ("input_tokens", "output_tokens", "total_tokens", "cost_usd")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def is_turn(response: dict[str, Any]) -> bool:
    """An assistant turn rtrec derived from output audio (not delegated work)."""
    return str(response.get("response_id") or "").startswith(live.TURN_ID_PREFIX)


def transcript_turns(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation: consecutive transcript deltas of one side joined into one turn, in order;
    assistant turns are numbered like the `live-turn-N` responses they belong to."""
    turns: list[dict[str, Any]] = []
    answers = 0
    for event in events:
        role = live.TRANSCRIPT_DELTAS.get(event["type"])
        text = _dict(event.get("payload")).get("delta")
        if role is None or not isinstance(text, str):
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["text"] += text
            continue
        answers += role == "assistant"
        number = answers if role == "assistant" else None
        turns.append({"role": role, "text": text, "ts": event["ts"], "number": number})
    return turns


def delegated_work(
    events: Sequence[dict[str, Any]], responses: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each delegation (`session.delegation.created`) and each delegated response or decision
    with its model, status, tokens and cost, in the order they were seen."""
    targets = {}
    for event in events:
        if event["type"] == live.DELEGATION_CREATED:
            found = live.delegation(_dict(event.get("payload")))
            if found is not None:
                targets[found.id] = found.target
    work = []
    for row in responses:
        if is_turn(row):
            continue
        decision = str(row["response_id"]).startswith(live.DECISION_ID_PREFIX)
        work.append(
            {
                "kind": "decision" if decision else "response",
                "delegation_id": row.get("delegation_id"),
                "target": targets.get(row.get("delegation_id") or ""),
                "response_id": row["response_id"],
                "model": row.get("model"),
                "status": row.get("status"),
                **{column: row.get(column) for column in DELEGATED_COLUMNS},
            }
        )
    delegated = {w["delegation_id"] for w in work}
    for delegation_id, target in targets.items():
        if delegation_id not in delegated:  # announced, but no usage (yet)
            work.append({"kind": "delegation", "delegation_id": delegation_id, "target": target})
    return work


def decisions(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """What each `decision.event` answered, with the delegation or trigger that asked."""
    found = []
    for event in events:
        if event["type"] != live.DECISION_EVENT:
            continue
        payload = _dict(event.get("payload"))
        _, nested = live.nested_event(payload)
        decision = _dict(nested.get("decision"))
        found.append(
            {
                "ts": event["ts"],
                "delegation_id": payload.get("delegation_id"),
                "trigger_id": payload.get("trigger_id"),
                "model": decision.get("model"),
                "answers": decision.get("answers"),
            }
        )
    return found


def billing(session: dict[str, Any]) -> dict[str, Any]:
    """The session's billable seconds (total, active, paused), their cost, context usage, whether
    `session.closed` confirmed them, and why the session ended."""
    return {column: session.get(column) for column in BILLING_COLUMNS}


def _ms(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (as_utc(end) - as_utc(start)).total_seconds() * 1000


def waterfall(responses: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per assistant turn, the milestones of `analysis.latency.waterfall`'s rows: the user's last
    transcript delta at 0 (`speech stopped`), first audio, and the turn's last audio (`done`)."""
    rows = []
    for number, turn in enumerate((r for r in responses if is_turn(r)), start=1):
        to_audio = turn.get("time_to_first_audio_ms")
        first_audio = turn.get("created_at")
        heard = None
        if to_audio is not None and first_audio is not None:
            heard = as_utc(first_audio) - timedelta(milliseconds=float(to_audio))
        rows.append(
            {
                "turn": number,
                "response_id": turn["response_id"],
                "status": turn.get("status"),
                "speech stopped": 0.0 if heard is not None else None,
                "response created": None,
                "first text": None,
                "first audio": to_audio,
                "done": _ms(heard, turn.get("done_at")),
                "voice-to-voice": turn.get("voice_to_voice_ms"),
            }
        )
    return rows
