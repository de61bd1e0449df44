"""Pure builders for GPT-Live server events (``/v1/live/sessions``; the SDK's ``types/live``)."""

from __future__ import annotations

import time
from typing import Any, Literal

from simulator.audio import AudioFormat, ga_format
from simulator.events import JSON, new_id, server_event

DEFAULT_LIVE_MODEL = "gpt-live-1"
DEFAULT_LIVE_VOICE = "marin"
#: How long a session may run (the real limit is not documented; the Realtime API's is an hour).
LIVE_SESSION_TTL_S = 3600
#: The context size ``context_window.usage_ratio`` is measured against (a plausible figure).
CONTEXT_LIMIT_TOKENS = 32_000
#: ``audio.format`` objects the Live WebSocket accepts, as the simulator's format names.
LIVE_FORMATS: dict[tuple[str, int], AudioFormat] = {
    ("audio/pcm", 24_000): "pcm16",
    ("audio/pcm", 16_000): "pcm16_16k",
    ("audio/pcmu", 8_000): "g711_ulaw",
    ("audio/pcma", 8_000): "g711_alaw",
}
CloseReason = Literal["close_requested", "expired", "content", "remote_hangup", "connection_lost"]
DelegationTarget = Literal["client", "responses", "decisions"]


def live_format(fmt: AudioFormat) -> JSON:
    """The Live ``audio.format`` object of a format (G.711 names its 8 kHz rate, unlike GA)."""
    shape = dict(ga_format(fmt))
    shape.setdefault("rate", 8_000)
    return shape


def live_event(type_: str, client_event_id: str | None = None, **fields: Any) -> JSON:
    """A Live server event with a fresh ``event_id``, echoing the client's ``event_id`` if any."""
    event = server_event(type_, **fields)
    if client_event_id is not None:
        event["client_event_id"] = client_event_id
    return event


def live_error(
    code: str,
    message: str,
    *,
    param: str | None = None,
    client_event_id: str | None = None,
    error_type: str = "invalid_request_error",
) -> JSON:
    """An ``error`` event; ``client_event_id`` names the offending client command."""
    error: JSON = {"type": error_type, "code": code, "message": message, "param": param}
    if client_event_id is not None:
        error["client_event_id"] = client_event_id
    return live_event("error", client_event_id, error=error)


def session_resource(session_id: str, config: JSON, fmt: AudioFormat, expires_at: int) -> JSON:
    """The ``SessionResource``: the client's config resolved with defaults, plus id and status."""
    audio_config = config.get("audio") or {}
    voice = (audio_config.get("output") or {}).get("voice") or DEFAULT_LIVE_VOICE
    resource: JSON = {
        "id": session_id,
        "expires_at": expires_at,
        "model": config["model"],
        "status": "active",
        "audio": {"format": live_format(fmt), "output": {"voice": voice}},
        "delegation": config.get("delegation"),
        "store": bool(config.get("store", False)),
        "triggers": list(config.get("triggers") or []),
    }
    for optional in ("instructions", "input", "safety_identifier", "client"):
        if config.get(optional) is not None:
            resource[optional] = config[optional]
    return resource


def new_session_id() -> str:
    return new_id("live")


def expiry_from_now() -> int:
    return int(time.time()) + LIVE_SESSION_TTL_S


def session_usage(seconds: int, paused_seconds: int = 0) -> JSON:
    """Cumulative billable seconds; whole seconds although the SDK types ``seconds`` a float."""
    return {
        "seconds": float(seconds),
        "active_seconds": seconds - paused_seconds,
        "paused_seconds": paused_seconds,
    }


def usage_updated(usage: JSON, context_tokens: int) -> JSON:
    ratio = round(min(1.0, context_tokens / CONTEXT_LIMIT_TOKENS), 4)
    return live_event("session.usage.updated", usage=usage, context_window={"usage_ratio": ratio})


def session_closed(
    reason: CloseReason, resource: JSON, usage: JSON, client_event_id: str | None = None
) -> JSON:
    return live_event(
        "session.closed", client_event_id, reason=reason, session=resource, usage=usage
    )


def transcript_delta(
    side: Literal["input", "output"], delta: str, start_ms: int, end_ms: int
) -> JSON:
    """A user (``input``) or model (``output``) transcript fragment on the session timeline."""
    return live_event(
        f"session.{side}_transcript.delta", delta=delta, start_ms=start_ms, end_ms=end_ms
    )


def output_audio_delta(audio_b64: str) -> JSON:
    """Model audio on the primary socket: no ``event_id`` and no timestamps."""
    return {"type": "session.output_audio.delta", "delta": audio_b64}


def reflected_input_audio(audio_b64: str) -> JSON:
    """The caller's audio as a sideband sees it: PCM16 24 kHz, no ``event_id``, no timestamps."""
    return {"type": "session.input_audio.append", "audio": audio_b64}


def reflected_output_audio(audio_b64: str, start_ms: int, end_ms: int) -> JSON:
    """Model audio on a sideband: PCM16 24 kHz with its range on the session's timeline."""
    return {
        "type": "session.output_audio.delta",
        "delta": audio_b64,
        "start_ms": start_ms,
        "end_ms": end_ms,
    }


def delegation_created(
    target: DelegationTarget, offset_ms: int, response_id: str | None = None
) -> JSON:
    delegation: JSON = {"id": new_id("del"), "target": target, "type": "delegation"}
    if response_id is not None:
        delegation["response_id"] = response_id
    return live_event("session.delegation.created", delegation=delegation, offset_ms=offset_ms)


def response_event(nested: JSON, delegation_id: str | None) -> JSON:
    """A delegated Responses streaming event wrapped for the Live socket."""
    return live_event("response.event", event=nested, delegation_id=delegation_id)


def decision_event(
    decision: JSON,
    *,
    delegation_id: str | None = None,
    trigger_id: str | None = None,
    source: JSON | None = None,
) -> JSON:
    """A ``decision.completed`` for a delegation, a transcript trigger (``source`` is the
    transcript delta that fired it) or a ``decision.create`` command (which it cannot name: the
    SDK's ``DecisionEvent`` has no ``client_event_id``)."""
    return live_event(
        "decision.event",
        event={"type": "decision.completed", "decision": decision},
        delegation_id=delegation_id,
        trigger_id=trigger_id,
        source_event_id=source["event_id"] if source else None,
        source_event_type=source["type"] if source else None,
    )


def appended(kind: str, start_ms: int, end_ms: int, client_event_id: str | None) -> JSON:
    """``session.instructions.appended`` and its thinking/commentary twins."""
    return live_event(f"session.{kind}.appended", client_event_id, start_ms=start_ms, end_ms=end_ms)
