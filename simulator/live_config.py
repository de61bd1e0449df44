"""Checks of GPT-Live session configuration: ``session.start``'s config and ``session.update``'s
changes; each failure is a :class:`ClientError` as the real service reports it."""

from __future__ import annotations

import copy
from typing import Any

from simulator.audio import AudioFormat
from simulator.events import JSON
from simulator.live_events import LIVE_FORMATS
from simulator.params import ClientError, as_object, invalid_type, invalid_value

#: ``SessionConfig``'s fields; the config is strict, so anything else is rejected.
START_FIELDS = frozenset(
    {"model", "audio", "client", "delegation", "input", "instructions", "safety_identifier",
     "store", "triggers"}
)  # fmt: skip
#: What ``session.update`` may change; the rest is immutable after startup.
UPDATE_FIELDS = frozenset({"delegation", "triggers"})
DELEGATION_TYPES = ("client", "responses", "decisions")


def _unknown(param: str) -> ClientError:
    return ClientError("unknown_parameter", f"Unknown parameter: '{param}'.", param)


def audio_format_of(audio: Any) -> AudioFormat:
    """The session's format from ``audio.format`` (PCM16 24 kHz when it is not given)."""
    if audio is None:
        return "pcm16"
    given = as_object(audio, "session.audio").get("format")
    if given is None:
        return "pcm16"
    fmt = as_object(given, "session.audio.format")
    kind = fmt.get("type")
    rate = fmt.get("rate", 8_000 if kind in ("audio/pcmu", "audio/pcma") else 24_000)
    found = LIVE_FORMATS.get((str(kind), rate if isinstance(rate, int) else -1))
    if found is None:
        supported = [f"{k} at {r} Hz" for k, r in LIVE_FORMATS]
        raise invalid_value("session.audio.format", f"{kind} at {rate} Hz", supported)
    return found


def _check_delegation(delegation: Any, param: str) -> None:
    if delegation is None:
        return
    kind = as_object(delegation, param).get("type")
    if kind not in DELEGATION_TYPES:
        raise invalid_value(f"{param}.type", kind, list(DELEGATION_TYPES))


def _check_triggers(triggers: Any) -> None:
    if triggers is not None and not isinstance(triggers, list):
        raise invalid_type("session.triggers", "an array", triggers)


def check_start(session: Any) -> tuple[JSON, AudioFormat]:
    """The checked ``session.start`` config and its audio format."""
    config = as_object(session, "session")
    for key in config:
        if key not in START_FIELDS:
            raise _unknown(f"session.{key}")
    model = config.get("model")
    if model is None:
        raise ClientError(
            "missing_required_parameter", "Missing required parameter: 'session.model'.",
            "session.model",
        )  # fmt: skip
    if not isinstance(model, str) or not model:
        raise invalid_type("session.model", "a non-empty string", model)
    _check_delegation(config.get("delegation"), "session.delegation")
    _check_triggers(config.get("triggers"))
    return copy.deepcopy(config), audio_format_of(config.get("audio"))


def apply_update(config: JSON, session: Any) -> None:
    """Apply a ``session.update`` to ``config``: delegation settings (same type) and triggers."""
    update = as_object(session, "session")
    for key in update:
        if key not in UPDATE_FIELDS:
            raise _unknown(f"session.{key}")
    delegation = update.get("delegation")
    if "delegation" in update and delegation is not None:
        _check_delegation(delegation, "session.delegation")
        current = config.get("delegation") or {}
        if delegation["type"] != current.get("type"):
            raise ClientError(
                "invalid_value",
                "The delegation type cannot change after startup.",
                "session.delegation.type",
            )
        merged = {**current, **delegation}
        for backend in ("responses", "decisions"):
            if isinstance(delegation.get(backend), dict):
                merged[backend] = {**(current.get(backend) or {}), **delegation[backend]}
        config["delegation"] = merged
    if "triggers" in update:
        _check_triggers(update["triggers"])
        config["triggers"] = list(update["triggers"] or [])
