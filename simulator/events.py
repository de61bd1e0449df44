"""Pure builders for Realtime API server events (GA and beta shapes, docs/realtime-api.md)."""

from __future__ import annotations

import random
import string
from typing import Any

from simulator.audio import USER_AUDIO_MS_PER_TOKEN, AudioFormat, audio_tokens, ga_format

JSON = dict[str, Any]

_ALNUM = string.ascii_letters + string.digits
ID_LENGTH = 21

DEFAULT_MODEL = "gpt-realtime"
DEFAULT_VOICE = "alloy"
DEFAULT_INSTRUCTIONS = (
    "Your knowledge cutoff is 2023-10. You are a helpful, witty, and friendly AI. Act like a "
    "human, but remember that you aren't a human and that you can't do human things in the real "
    "world."
)
GA_SESSION_TTL_S = 3600
BETA_SESSION_TTL_S = 1800


def new_id(prefix: str) -> str:
    """An id like the real API's: ``<prefix>_`` + 21 random letters and digits."""
    return f"{prefix}_{''.join(random.choices(_ALNUM, k=ID_LENGTH))}"


def obfuscation() -> str:
    """Random padding like the GA ``obfuscation`` field on delta events."""
    return "".join(random.choices(_ALNUM, k=random.randint(4, 14)))


def server_event(type_: str, **fields: Any) -> JSON:
    """A server event: ``type``, a fresh ``event_id``, then ``fields`` in order."""
    return {"type": type_, "event_id": new_id("event"), **fields}


def error_event(
    code: str | None,
    message: str,
    *,
    param: str | None = None,
    client_event_id: str | None = None,
    error_type: str = "invalid_request_error",
) -> JSON:
    """An ``error`` event (docs/realtime-api.md#errors); ``client_event_id`` is the offending
    client event."""
    return server_event(
        "error",
        error={
            "type": error_type,
            "code": code,
            "message": message,
            "param": param,
            "event_id": client_event_id,
        },
    )


# --------------------------------------------------------------------------- turn detection
def server_vad_defaults(*, transcription_session: bool) -> JSON:
    if transcription_session:
        return {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 200,
        }
    return {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    }


def beta_server_vad_defaults() -> JSON:
    return {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
        "create_response": True,
        "interrupt_response": True,
    }


def semantic_vad_defaults() -> JSON:
    return {
        "type": "semantic_vad",
        "eagerness": "auto",
        "create_response": True,
        "interrupt_response": True,
    }


# --------------------------------------------------------------------------- sessions
def ga_realtime_session(session_id: str, model: str, expires_at: int) -> JSON:
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": expires_at,
        "audio": {
            "input": {
                "format": ga_format("pcm16"),
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": server_vad_defaults(transcription_session=False),
            },
            "output": {"format": ga_format("pcm16"), "voice": DEFAULT_VOICE, "speed": 1.0},
        },
        "include": None,
    }


def ga_transcription_session(session_id: str, expires_at: int) -> JSON:
    return {
        "type": "transcription",
        "object": "realtime.transcription_session",
        "id": session_id,
        "expires_at": expires_at,
        "audio": {
            "input": {
                "format": ga_format("pcm16"),
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": server_vad_defaults(transcription_session=True),
            }
        },
        "include": None,
    }


def beta_realtime_session(session_id: str, model: str, expires_at: int) -> JSON:
    return {
        "id": session_id,
        "object": "realtime.session",
        "expires_at": expires_at,
        "model": model,
        "modalities": ["audio", "text"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "voice": DEFAULT_VOICE,
        "input_audio_format": "pcm16",
        "output_audio_format": "pcm16",
        "input_audio_transcription": None,
        "input_audio_noise_reduction": None,
        "turn_detection": beta_server_vad_defaults(),
        "tool_choice": "auto",
        "temperature": 0.8,
        "max_response_output_tokens": "inf",
        "tools": [],
        "speed": 1.0,
        "tracing": None,
    }


def beta_transcription_session(session_id: str, expires_at: int) -> JSON:
    """Beta ``transcription_session.created`` payload (not in the beta SDK union:
    docs/realtime-api.md#event-names)."""
    return {
        "id": session_id,
        "object": "realtime.transcription_session",
        "expires_at": expires_at,
        "modalities": ["text"],
        "input_audio_format": "pcm16",
        "input_audio_transcription": None,
        "input_audio_noise_reduction": None,
        "turn_detection": server_vad_defaults(transcription_session=True),
        "include": None,
        "client_secret": None,
    }


# --------------------------------------------------------------------------- items
def message_item(*, beta: bool, item_id: str, status: str, role: str, content: list[JSON]) -> JSON:
    item: JSON = {"id": item_id}
    if beta:
        item["object"] = "realtime.item"
    item.update({"type": "message", "status": status, "role": role, "content": content})
    return item


def function_call_item(
    *, beta: bool, item_id: str, call_id: str, name: str, status: str, arguments: str = ""
) -> JSON:
    """An assistant ``function_call`` item (beta items also carry ``object``)."""
    item: JSON = {"id": item_id}
    if beta:
        item["object"] = "realtime.item"
    item.update(
        {
            "type": "function_call",
            "status": status,
            "name": name,
            "call_id": call_id,
            "arguments": arguments,
        }
    )
    return item


def assistant_content(*, beta: bool, audio: bool, text: str) -> JSON:
    """The assistant content entry of an item (GA ``output_text``/``output_audio``)."""
    if audio:
        return {"type": "audio" if beta else "output_audio", "transcript": text}
    return {"type": "text" if beta else "output_text", "text": text}


def content_part(*, audio: bool, text: str) -> JSON:
    """The ``part`` of ``response.content_part.*``: ``text``/``audio`` in both interfaces."""
    if audio:
        return {"type": "audio", "transcript": text}
    return {"type": "text", "text": text}


# --------------------------------------------------------------------------- responses
def usage_object(
    *,
    beta: bool,
    input_text: int,
    input_audio: int,
    cached_text: int,
    cached_audio: int,
    output_text: int,
    output_audio: int,
) -> JSON:
    """``response.done`` usage: input = text + audio (+ image), cached ⊆ input, total = in + out."""
    input_tokens = input_text + input_audio
    output_tokens = output_text + output_audio
    cached_details: JSON = {"text_tokens": cached_text, "audio_tokens": cached_audio}
    input_details: JSON = {"text_tokens": input_text, "audio_tokens": input_audio}
    if not beta:
        cached_details["image_tokens"] = 0
        input_details["image_tokens"] = 0
    input_details["cached_tokens"] = cached_text + cached_audio
    input_details["cached_tokens_details"] = cached_details
    return {
        "total_tokens": input_tokens + output_tokens,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "input_token_details": input_details,
        "output_token_details": {"text_tokens": output_text, "audio_tokens": output_audio},
    }


def response_object(
    *,
    beta: bool,
    response_id: str,
    status: str,
    status_details: JSON | None,
    output: list[JSON],
    conversation_id: str | None,
    modalities: list[str],
    voice: Any,
    output_format: AudioFormat,
    max_output_tokens: int | str,
    usage: JSON | None,
    metadata: JSON | None,
    temperature: float = 0.8,
) -> JSON:
    if beta:
        return {
            "object": "realtime.response",
            "id": response_id,
            "status": status,
            "status_details": status_details,
            "output": output,
            "conversation_id": conversation_id,
            "modalities": modalities,
            "voice": voice,
            "output_audio_format": output_format,
            "temperature": temperature,
            "max_output_tokens": max_output_tokens,
            "usage": usage,
            "metadata": metadata,
        }
    return {
        "object": "realtime.response",
        "id": response_id,
        "status": status,
        "status_details": status_details,
        "output": output,
        "conversation_id": conversation_id,
        "output_modalities": modalities,
        "max_output_tokens": max_output_tokens,
        "audio": {"output": {"format": ga_format(output_format), "voice": voice}},
        "usage": usage,
        "metadata": metadata,
    }


def transcription_usage(model: str, ms: float, transcript: str) -> JSON:
    """Usage of ``...input_audio_transcription.completed`` (docs/realtime-api.md, transcription)."""
    if model == "whisper-1":
        return {"type": "duration", "seconds": round(ms / 1000, 3)}
    audio = audio_tokens(ms, USER_AUDIO_MS_PER_TOKEN)
    words = len(transcript.split())
    return {
        "type": "tokens",
        "total_tokens": audio + words,
        "input_tokens": audio,
        "input_token_details": {"text_tokens": 0, "audio_tokens": audio},
        "output_tokens": words,
    }


def logprobs_for(text: str) -> list[JSON]:
    """Plausible logprobs: one entry per word-ish token of ``text``."""
    out: list[JSON] = []
    for i, word in enumerate(text.split(" ")):
        token = word if i == 0 else " " + word
        out.append(
            {
                "token": token,
                "logprob": -round(0.001 * (1 + i % 7), 4),
                "bytes": list(token.encode()),
            }
        )
    return out
