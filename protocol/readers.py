"""Pure readers of Realtime events, responses, items, usage and sessions (beta and GA alike)."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson

from protocol.audio import StrippedAudio, strip_audio
from protocol.audio import base64_decoded_size as base64_decoded_size
from protocol.audio import strip_nested_audio as strip_nested_audio
from protocol.events import BINARY, INVALID
from protocol.pricing import PriceTable
from protocol.redact import redact_free_text

BETA_SUBPROTOCOL = "openai-beta.realtime-v1"
INT64_MAX = 2**63 - 1
# Longest model name stored: real names are under 40 characters, a client's `?model=` is anything.
MODEL_MAX_CHARS = 64
UNKNOWN_MODEL = "unknown"
OTHER_MODEL = "other"


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """How audio bytes in a session are encoded: `pcm16`, `g711_ulaw` or `g711_alaw`."""

    name: str
    sample_rate: int

    @property
    def bytes_per_second(self) -> int:
        return self.sample_rate * (2 if self.name == "pcm16" else 1)


PCM16 = AudioFormat("pcm16", 24_000)
G711_ULAW = AudioFormat("g711_ulaw", 8_000)
G711_ALAW = AudioFormat("g711_alaw", 8_000)
_BETA_FORMATS = {"pcm16": PCM16, "g711_ulaw": G711_ULAW, "g711_alaw": G711_ALAW}
_GA_FORMATS = {"audio/pcm": PCM16, "audio/pcmu": G711_ULAW, "audio/pcma": G711_ALAW}


def parse_frame(content: bytes, is_text: bool) -> tuple[str, Any]:
    """The event type and decoded JSON of one WebSocket message (`binary` / `invalid` when odd)."""
    if not is_text:
        return BINARY, None
    try:
        event = orjson.loads(content)
    except orjson.JSONDecodeError:
        try:  # orjson refuses integers past 64 bits and lone surrogates; the stdlib does not.
            # Decode first: given bytes, json.loads would also accept UTF-16 and UTF-32.
            event = json.loads(content.decode("utf-8"))
        except (ValueError, RecursionError):
            return INVALID, None
    event_type = event.get("type") if isinstance(event, dict) else None
    if isinstance(event_type, str):
        return event_type, event
    return INVALID, event


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def int64_or_none(value: Any) -> int | None:
    """An integer that fits a BIGINT column, else None (bools and floats are not counters)."""
    if isinstance(value, int) and not isinstance(value, bool) and -INT64_MAX <= value <= INT64_MAX:
        return value
    return None


def float_or_none(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if abs(value) < 1e300 else None
    return None


def event_refs(event: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """`event_id`, `response_id` and `item_id` of an event, looking inside `response`/`item`."""
    # Read for every message: plain lookups and type tests, no helper calls.
    get = event.get
    response_id = get("response_id")
    if not isinstance(response_id, str):
        response = get("response")
        response_id = response.get("id") if isinstance(response, dict) else None
        if not isinstance(response_id, str):
            response_id = None
    item_id = get("item_id")
    if not isinstance(item_id, str):
        item = get("item")
        item_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(item_id, str):
            item_id = None
    event_id = get("event_id")
    return event_id if isinstance(event_id, str) else None, response_id, item_id


def error_fields(event: dict[str, Any]) -> tuple[str | None, str | None]:
    """`error.type` and `error.code` of an `error` event."""
    error = _dict(event.get("error"))
    return _str_or_none(error.get("type")), _str_or_none(error.get("code"))


def response_usage(usage: Any) -> dict[str, int | None]:
    """Every counter of a `response.done` usage as sent; None where the server left it out."""
    usage = _dict(usage)
    itd = _dict(usage.get("input_token_details"))
    ctd = _dict(itd.get("cached_tokens_details"))
    otd = _dict(usage.get("output_token_details"))
    return {
        "input_tokens": int64_or_none(usage.get("input_tokens")),
        "output_tokens": int64_or_none(usage.get("output_tokens")),
        "total_tokens": int64_or_none(usage.get("total_tokens")),
        "input_text_tokens": int64_or_none(itd.get("text_tokens")),
        "input_audio_tokens": int64_or_none(itd.get("audio_tokens")),
        "input_image_tokens": int64_or_none(itd.get("image_tokens")),
        "cached_tokens": int64_or_none(itd.get("cached_tokens")),
        "cached_text_tokens": int64_or_none(ctd.get("text_tokens")),
        "cached_audio_tokens": int64_or_none(ctd.get("audio_tokens")),
        "cached_image_tokens": int64_or_none(ctd.get("image_tokens")),
        "output_text_tokens": int64_or_none(otd.get("text_tokens")),
        "output_audio_tokens": int64_or_none(otd.get("audio_tokens")),
    }


@dataclass(frozen=True, slots=True)
class ResponseOutcome:
    status: str | None
    reason: str | None
    error_type: str | None
    error_code: str | None


def response_outcome(response: Any) -> ResponseOutcome:
    """Status, `status_details.reason` and the error of a failed response."""
    response = _dict(response)
    details = _dict(response.get("status_details"))
    error = _dict(details.get("error"))
    return ResponseOutcome(
        status=_str_or_none(response.get("status")),
        reason=_str_or_none(details.get("reason")),
        error_type=_str_or_none(error.get("type")),
        error_code=_str_or_none(error.get("code")),
    )


@dataclass(frozen=True, slots=True)
class RateLimitEntry:
    name: str | None
    limit: int | None
    remaining: int | None
    reset_seconds: float | None


def rate_limit_entries(event: dict[str, Any]) -> list[RateLimitEntry]:
    """One entry per element of a `rate_limits.updated` event's `rate_limits` list."""
    entries = event.get("rate_limits")
    if not isinstance(entries, list):
        return []
    return [
        RateLimitEntry(
            name=_str_or_none(entry.get("name")),
            limit=int64_or_none(entry.get("limit")),
            remaining=int64_or_none(entry.get("remaining")),
            reset_seconds=float_or_none(entry.get("reset_seconds")),
        )
        for entry in entries
        if isinstance(entry, dict)
    ]


def transcription_usage(usage: Any) -> dict[str, Any]:
    """Columns of a transcription usage: billed by `tokens` or by `duration`."""
    usage = _dict(usage)
    details = _dict(usage.get("input_token_details"))
    return {
        "usage_type": _str_or_none(usage.get("type")),
        "input_tokens": int64_or_none(usage.get("input_tokens")),
        "output_tokens": int64_or_none(usage.get("output_tokens")),
        "total_tokens": int64_or_none(usage.get("total_tokens")),
        "input_audio_tokens": int64_or_none(details.get("audio_tokens")),
        "input_text_tokens": int64_or_none(details.get("text_tokens")),
        "seconds": float_or_none(usage.get("seconds")),
    }


def audio_format(value: Any) -> AudioFormat | None:
    """A beta format name (`pcm16`) or GA format object (`{"type": "audio/pcm", "rate": 24000}`).

    None for anything the API does not accept (pcm16 is 24 kHz only, G.711 8 kHz: see
    docs/realtime-api.md#the-session-object-and-audio-formats), so a client's
    `"rate": 5000000000` never becomes the rate of recorded audio.
    """
    if isinstance(value, str):
        return _BETA_FORMATS.get(value)
    value = _dict(value)
    fmt = _GA_FORMATS.get(_str_or_none(value.get("type")) or "")
    if fmt is None or value.get("rate", fmt.sample_rate) != fmt.sample_rate:
        return None
    return fmt


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """What the recorder needs from a session object; None where the object does not say."""

    model: str | None = None
    openai_session_id: str | None = None
    input_format: AudioFormat | None = None
    output_format: AudioFormat | None = None
    transcription_model: str | None = None


def session_config(session: Any) -> SessionConfig:
    """Model, id, audio formats and transcription model of a beta (flat) or GA (nested) session."""
    session = _dict(session)
    audio = _dict(session.get("audio"))
    audio_in, audio_out = _dict(audio.get("input")), _dict(audio.get("output"))
    transcription = audio_in.get("transcription", session.get("input_audio_transcription"))
    transcription_model = stored_model(_dict(transcription).get("model"))
    model = stored_model(session.get("model"))
    if model is None and session.get("type") == "transcription":
        model = transcription_model  # a transcription-only session's model is its ASR model
    return SessionConfig(
        model=model,
        openai_session_id=_str_or_none(session.get("id")),
        input_format=audio_format(audio_in.get("format", session.get("input_audio_format"))),
        output_format=audio_format(audio_out.get("format", session.get("output_audio_format"))),
        transcription_model=transcription_model,
    )


def response_output_format(response: Any) -> AudioFormat | None:
    """The audio format a `response` object (or `response.create` params) asks for, if any."""
    response = _dict(response)
    ga = _dict(_dict(response.get("audio")).get("output")).get("format")
    return audio_format(ga if ga is not None else response.get("output_audio_format"))


def strip_payload(
    event_type: str, event: dict[str, Any], everywhere: bool = False
) -> StrippedAudio:
    """Remove audio and padding from `event` in place (`protocol.audio.strip_audio`).

    The audio fields keep their decoded byte count, and the GA `obfuscation` padding is dropped.
    """
    event.pop("obfuscation", None)
    return strip_audio(event_type, event, everywhere)


def _split_path(path: str) -> tuple[str, str]:
    """Path and query string of a request target, whatever it holds (urlsplit raises on `//[`)."""
    target = path.partition("#")[0]
    route, _, query = target.partition("?")
    return route, query


def model_from_path(path: str) -> str | None:
    """The model named by a `/realtime` URL (`model=`, or Azure's `deployment=`), fit to store."""
    query = parse_qs(_split_path(path)[1])
    for name in ("model", "deployment"):
        if query.get(name):
            return stored_model(query[name][0])
    return None


def stored_model(model: Any) -> str | None:
    """A model name fit to store and log: secrets redacted, then cut to `MODEL_MAX_CHARS`."""
    if not isinstance(model, str) or not model:
        return None
    return redact_free_text(model)[:MODEL_MAX_CHARS]


def metric_model(model: str | None, prices: PriceTable, reported: Collection[str] = ()) -> str:
    """The `model` label: a priced model, one the server `reported`, `unknown`, else `other`.

    Any client names any model in `?model=`, and each name would be new series in every metric:
    only names the price table knows or the server itself sent become labels. A dated snapshot
    priced through its base model is labelled with the base unless the server reported it.
    """
    if not model or model == UNKNOWN_MODEL:
        return UNKNOWN_MODEL
    if model in reported:
        return model[:MODEL_MAX_CHARS]
    return prices.priced_name(model) or OTHER_MODEL


def is_realtime_path(path: str) -> bool:
    """A WebSocket to a path ending in `/realtime` is a Realtime session (query string aside)."""
    return _split_path(path)[0].rstrip("/").endswith("/realtime")


def is_beta(headers: dict[str, str], subprotocols: list[str]) -> bool:
    """True when the client opts into the beta interface by header or subprotocol."""
    beta_header = headers.get("openai-beta", "").replace(" ", "").lower()
    return "realtime=v1" in beta_header.split(",") or BETA_SUBPROTOCOL in subprotocols


def transcript_of(event: dict[str, Any]) -> str | None:
    return _str_or_none(event.get("transcript"))
