"""GPT-Live protocol knowledge (`/v1/live/sessions`) as pure functions over decoded events.

Event names and shapes follow the SDK's `openai/types/live/` (the authority, see
/work/shared/reference/gpt-live.md); nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from protocol.readers import (
    G711_ALAW,
    G711_ULAW,
    PCM16,
    AudioFormat,
    float_or_none,
    int64_or_none,
    stored_model,
)

# Client commands (T/client_event, connect_client_event, fork_client_event).
SESSION_START = "session.start"
INPUT_AUDIO_APPEND = "session.input_audio.append"  # also the sideband's reflected user audio
FIXTURE_PLAY = "session.output_audio.fixture.play"
CLIENT_EVENT_TYPES = frozenset(
    {
        SESSION_START,
        "session.update",
        INPUT_AUDIO_APPEND,
        "session.input_audio.mute",
        "session.input_audio.unmute",
        FIXTURE_PLAY,
        "session.instructions.append",
        "session.thinking.append",
        "session.commentary.append",
        "decision.create",
        "decision.item.create",
        "decision.item.delete",
        "response.item.create",
        "response.create",
        "session.close",
        "transport.dtmf.send",
    }
)

# Server events (T/server_event, connect_server_event).
SESSION_STARTED = "session.started"
SESSION_UPDATED = "session.updated"
OUTPUT_AUDIO_DELTA = "session.output_audio.delta"
INPUT_TRANSCRIPT_DELTA = "session.input_transcript.delta"
OUTPUT_TRANSCRIPT_DELTA = "session.output_transcript.delta"
USAGE_UPDATED = "session.usage.updated"
SESSION_CLOSED = "session.closed"
DELEGATION_CREATED = "session.delegation.created"
RESPONSE_EVENT = "response.event"
DECISION_EVENT = "decision.event"
ERROR = "error"
SERVER_EVENT_TYPES = frozenset(
    {
        SESSION_STARTED,
        SESSION_UPDATED,
        "session.paused",
        "session.resumed",
        "session.input_audio.muted",
        "session.input_audio.unmuted",
        "session.output_audio.fixture.playing",
        "session.output_audio.fixture.played",
        "session.instructions.appended",
        "session.thinking.appended",
        "session.commentary.appended",
        INPUT_AUDIO_APPEND,
        OUTPUT_AUDIO_DELTA,
        INPUT_TRANSCRIPT_DELTA,
        OUTPUT_TRANSCRIPT_DELTA,
        DELEGATION_CREATED,
        RESPONSE_EVENT,
        DECISION_EVENT,
        "decision.item.created",
        "decision.item.deleted",
        USAGE_UPDATED,
        SESSION_CLOSED,
        ERROR,
        "info",
        "transport.dtmf.received",
        "transport.dtmf.sent",
        "transport.dtmf.send",
        "transport.ringing",
        "transport.answered",
        "transport.failed",
    }
)
EVENT_TYPES = CLIENT_EVENT_TYPES | SERVER_EVENT_TYPES
SESSION_STATE_EVENTS = frozenset({SESSION_STARTED, SESSION_UPDATED, SESSION_CLOSED})
# Events whose `error` object says what failed (`transport.failed` carries a `call_error`).
ERROR_EVENTS = frozenset({ERROR, "transport.failed"})
# Nested Responses events whose `response` snapshot carries the delegated token usage.
RESPONSE_FINAL_EVENTS = frozenset(
    {"response.completed", "response.failed", "response.incomplete", "response.done"}
)

# What a GPT-Live session's page and `rtrec diff` read: the transcripts turns are built from,
# delegations and decisions, the close and every error.
TRANSCRIPT_DELTAS = {INPUT_TRANSCRIPT_DELTA: "user", OUTPUT_TRANSCRIPT_DELTA: "assistant"}
PRESENTED_EVENT_TYPES = frozenset(
    {*TRANSCRIPT_DELTAS, DELEGATION_CREATED, DECISION_EVENT, SESSION_CLOSED, *ERROR_EVENTS}
)
# Ids rtrec gives the `responses` rows it derives: assistant turns (from output audio) and
# decisions (which carry no id of their own); a delegated Responses response keeps its own id.
TURN_ID_PREFIX = "live-turn-"
DECISION_ID_PREFIX = "decision-"

# The three WebSockets of GPT-Live (T/sideband_connect_params, forks.py).
PRIMARY, SIDEBAND, FORK = "primary", "sideband", "fork"

PCM16_16K = AudioFormat("pcm16", 16_000)
_FORMATS = {
    ("audio/pcm", 24_000): PCM16,
    ("audio/pcm", 16_000): PCM16_16K,
    ("audio/pcmu", 8_000): G711_ULAW,
    ("audio/pcma", 8_000): G711_ALAW,
}
# Sideband reflections and fixture audio are PCM16 24 kHz whatever the session's format.
SIDEBAND_FORMAT = PCM16


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _segments(path: str) -> list[str]:
    route = path.partition("#")[0].partition("?")[0]
    return [part for part in route.split("/") if part]


def socket_kind(path: str) -> str | None:
    """`primary`, `sideband` (`…/{id}/attach`) or `fork` (`…/{id}/fork`) for a GPT-Live socket
    path (OpenAI's `/v1/live/sessions…` or Azure's `/openai/v1/live/sessions…`), else None."""
    parts = _segments(path)
    for start in range(len(parts) - 1):
        if parts[start : start + 2] != ["live", "sessions"]:
            continue
        rest = parts[start + 2 :]
        if not rest:
            return PRIMARY
        if len(rest) == 2 and rest[1] == "attach":
            return SIDEBAND
        if len(rest) == 2 and rest[1] == "fork":
            return FORK
    return None


def is_live_path(path: str) -> bool:
    return socket_kind(path) is not None


def audio_format(value: Any) -> AudioFormat | None:
    """A Live `audio.format` object (`{"type": "audio/pcm", "rate": 16000}`), None if invalid."""
    value = _dict(value)
    rate = value.get("rate")
    if not isinstance(rate, int) or isinstance(rate, bool):
        return None
    return _FORMATS.get((_str_or_none(value.get("type")) or "", rate))


@dataclass(frozen=True, slots=True)
class LiveSession:
    """What a `session.start`'s config or a `SessionResource` says; None where it is silent."""

    model: str | None = None
    openai_session_id: str | None = None
    audio_format: AudioFormat | None = None


def session_of(event: dict[str, Any]) -> LiveSession:
    """Model, session id and audio format of `session.start`, `session.started/updated/closed`."""
    session = _dict(event.get("session"))
    return LiveSession(
        model=stored_model(session.get("model")),
        openai_session_id=_str_or_none(session.get("id")),
        audio_format=audio_format(_dict(session.get("audio")).get("format")),
    )


@dataclass(frozen=True, slots=True)
class SessionUsage:
    """Cumulative billable seconds (T/session_usage): take the last, never add events up."""

    seconds: float
    active_seconds: float
    paused_seconds: float


def session_usage(event: dict[str, Any]) -> SessionUsage | None:
    """The `usage` of `session.usage.updated` / `session.closed`; active is `seconds - paused`
    when the server gives no breakdown (only eligible WebRTC sessions do)."""
    usage = _dict(event.get("usage"))
    seconds = float_or_none(usage.get("seconds"))
    if seconds is None or seconds < 0:
        return None
    paused = float_or_none(usage.get("paused_seconds"))
    paused = paused if paused is not None and paused >= 0 else 0.0
    active = float_or_none(usage.get("active_seconds"))
    if active is None or active < 0:
        active = max(seconds - paused, 0.0)
    return SessionUsage(seconds=seconds, active_seconds=active, paused_seconds=paused)


def context_usage_ratio(event: dict[str, Any]) -> float | None:
    """`context_window.usage_ratio` of `session.usage.updated` (omitted when unknown)."""
    ratio = float_or_none(_dict(event.get("context_window")).get("usage_ratio"))
    return ratio if ratio is not None and ratio >= 0 else None


def close_reason(event: dict[str, Any]) -> str | None:
    """`session.closed.reason`: close_requested, expired, content, remote_hangup, …"""
    reason = _str_or_none(event.get("reason"))
    return reason[:64] if reason else None


@dataclass(frozen=True, slots=True)
class Delegation:
    id: str
    target: str | None
    response_id: str | None


def delegation(event: dict[str, Any]) -> Delegation | None:
    """The `delegation` of `session.delegation.created`."""
    value = _dict(event.get("delegation"))
    delegation_id = _str_or_none(value.get("id"))
    if delegation_id is None:
        return None
    return Delegation(
        id=delegation_id,
        target=_str_or_none(value.get("target")),
        response_id=_str_or_none(value.get("response_id")),
    )


def nested_event(event: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The type and body of the Responses (or Decisions) event inside `response.event` /
    `decision.event`."""
    nested = _dict(event.get("event"))
    return _str_or_none(nested.get("type")), nested


@dataclass(frozen=True, slots=True)
class DelegatedUsage:
    """Token usage of delegated work: a Responses response or a Decisions decision."""

    response_id: str
    model: str | None
    status: str | None
    delegation_id: str | None
    usage: dict[str, int | None]


def tokens_usage(usage: Any) -> dict[str, int | None] | None:
    """A Responses/Decisions `usage` as `responses` columns: its tokens are text tokens."""
    usage = _dict(usage)
    if not usage:
        return None
    input_tokens = int64_or_none(usage.get("input_tokens"))
    output_tokens = int64_or_none(usage.get("output_tokens"))
    cached = int64_or_none(_dict(usage.get("input_tokens_details")).get("cached_tokens"))
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": int64_or_none(usage.get("total_tokens")),
        "input_text_tokens": input_tokens,
        "input_audio_tokens": None,
        "input_image_tokens": None,
        "cached_tokens": cached,
        "cached_text_tokens": cached,
        "cached_audio_tokens": None,
        "cached_image_tokens": None,
        "output_text_tokens": output_tokens,
        "output_audio_tokens": None,
    }


def response_event_usage(event: dict[str, Any]) -> DelegatedUsage | None:
    """Delegated Responses usage in a `response.event` whose nested event ends a response."""
    nested_type, nested = nested_event(event)
    if nested_type not in RESPONSE_FINAL_EVENTS:
        return None
    response = _dict(nested.get("response"))
    response_id = _str_or_none(response.get("id"))
    usage = tokens_usage(response.get("usage"))
    if response_id is None or usage is None:
        return None
    return DelegatedUsage(
        response_id=response_id,
        model=stored_model(response.get("model")),
        status=_str_or_none(response.get("status")),
        delegation_id=_str_or_none(event.get("delegation_id")),
        usage=usage,
    )


def decision_event_usage(event: dict[str, Any]) -> DelegatedUsage | None:
    """Decisions usage of a `decision.event` (`decision.completed`); a decision has no id of its
    own, so the row is keyed by the Live event's id."""
    nested_type, nested = nested_event(event)
    event_id = _str_or_none(event.get("event_id"))
    decision = _dict(nested.get("decision"))
    usage = tokens_usage(decision.get("usage"))
    if nested_type != "decision.completed" or event_id is None or usage is None:
        return None
    return DelegatedUsage(
        response_id=f"{DECISION_ID_PREFIX}{event_id}",
        model=stored_model(decision.get("model")),
        status="completed",
        delegation_id=_str_or_none(event.get("delegation_id")),
        usage=usage,
    )


@dataclass(frozen=True, slots=True)
class TranscriptDelta:
    text: str
    start_ms: float | None
    end_ms: float | None


def transcript_delta(event: dict[str, Any]) -> TranscriptDelta | None:
    """A `session.input_transcript.delta` / `session.output_transcript.delta` fragment."""
    text = _str_or_none(event.get("delta"))
    if text is None:
        return None
    return TranscriptDelta(
        text=text,
        start_ms=float_or_none(event.get("start_ms")),
        end_ms=float_or_none(event.get("end_ms")),
    )
