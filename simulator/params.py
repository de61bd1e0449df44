"""Checks of client-supplied parameters shared by sessions, items and responses; each failure is a
:class:`ClientError` carrying the code, message and param of the real API's ``error`` event."""

from __future__ import annotations

from typing import Any, cast

from simulator.audio import FORMAT_FROM_GA_TYPE, PCM16_RATE
from simulator.events import JSON


class ClientError(Exception):
    """A client event or parameter the server rejects with an ``error`` event (the socket stays
    open)."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


def invalid_type(param: str, expected: str, value: Any) -> ClientError:
    return ClientError(
        "invalid_type",
        f"Invalid type for '{param}': expected {expected}, but got {type(value).__name__} instead.",
        param,
    )


def invalid_value(param: str, value: Any, supported: list[str]) -> ClientError:
    options = ", ".join(f"'{s}'" for s in supported)
    return ClientError(
        "invalid_value",
        f"Invalid value: '{value}'. Supported values are: {options}.",
        param,
    )


def as_object(value: Any, param: str) -> dict[str, Any]:
    """``value`` if it is a JSON object, else the ``invalid_type`` error the API sends."""
    if not isinstance(value, dict):
        raise invalid_type(param, "an object", value)
    return cast(dict[str, Any], value)


def normalize_ga_format(value: Any, param: str) -> JSON:
    """A GA ``{"type": "audio/pcm", "rate": 24000}`` audio format, checked and completed."""
    given = as_object(value, param)
    kind = given.get("type")
    if kind not in FORMAT_FROM_GA_TYPE:
        raise invalid_value(f"{param}.type", kind, list(FORMAT_FROM_GA_TYPE))
    if kind != "audio/pcm":
        return {"type": kind}
    rate = given.get("rate", PCM16_RATE)
    if not isinstance(rate, int):
        raise invalid_type(f"{param}.rate", "an integer", rate)
    if rate < PCM16_RATE:
        raise ClientError(
            "integer_below_min_value",
            f"Invalid '{param}.rate': integer below minimum value. Expected a value >= "
            f"{PCM16_RATE}, but got {rate} instead.",
            f"{param}.rate",
        )
    if rate > PCM16_RATE:
        raise ClientError(
            "integer_above_max_value",
            f"Invalid '{param}.rate': integer above maximum value. Expected a value <= "
            f"{PCM16_RATE}, but got {rate} instead.",
            f"{param}.rate",
        )
    return {"type": "audio/pcm", "rate": rate}


def check_modalities(value: Any, param: str) -> list[str]:
    """A non-empty list of ``text``/``audio``."""
    if not isinstance(value, list) or not value:
        raise invalid_type(param, "a non-empty array", value)
    for m in value:
        if m not in ("text", "audio"):
            raise invalid_value(param, m, ["text", "audio"])
    return [str(m) for m in value]
