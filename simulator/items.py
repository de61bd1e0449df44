"""Conversation items: validation of client items, their server representation and input cost."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from simulator import events
from simulator.audio import (
    ASSISTANT_AUDIO_MS_PER_TOKEN,
    USER_AUDIO_MS_PER_TOKEN,
    AudioFormat,
    audio_ms,
    audio_tokens,
    text_tokens,
)
from simulator.events import JSON, new_id
from simulator.params import ClientError, as_object, invalid_value

#: Fixed per-item overhead billed as input text tokens ("a few special tokens per message").
MESSAGE_OVERHEAD_TOKENS = 4


@dataclass
class ConvItem:
    """One conversation item: its server representation plus what it costs as input context."""

    id: str
    item: JSON
    text_tokens: int
    audio_tokens: int
    audio: bytes = b""
    audio_format: AudioFormat = "pcm16"

    @property
    def audio_ms(self) -> float:
        return audio_ms(len(self.audio), self.audio_format)


def index_of(conversation: list[ConvItem], item_id: Any) -> int:
    """The position of the item with ``item_id`` in ``conversation``, -1 if there is none."""
    for index, conv_item in enumerate(conversation):
        if conv_item.id == item_id:
            return index
    return -1


def build_item(raw: Any, param: str, *, beta: bool, input_format: AudioFormat) -> ConvItem:
    """Validate a client item and build the server's representation of it."""
    given = as_object(raw, param)
    item_type = given.get("type", "message")
    raw_id = given.get("id")
    item_id = raw_id if isinstance(raw_id, str) and raw_id else new_id("item")
    head: JSON = {"id": item_id}
    if beta:
        head["object"] = "realtime.item"
    if item_type == "function_call":
        item = {
            **head,
            "type": "function_call",
            "status": "completed",
            "name": given.get("name"),
            "call_id": given.get("call_id"),
            "arguments": given.get("arguments", ""),
        }
        text = f"{given.get('name', '')}{given.get('arguments', '')}"
        return ConvItem(item_id, item, text_tokens(text) + MESSAGE_OVERHEAD_TOKENS, 0)
    if item_type == "function_call_output":
        item = {
            **head,
            "type": "function_call_output",
            "call_id": given.get("call_id"),
            "output": given.get("output", ""),
        }
        output = str(given.get("output", ""))
        return ConvItem(item_id, item, text_tokens(output) + MESSAGE_OVERHEAD_TOKENS, 0)
    if item_type != "message":
        raise invalid_value(
            f"{param}.type", item_type, ["message", "function_call", "function_call_output"]
        )
    role = given.get("role")
    if role not in ("user", "assistant", "system"):
        raise invalid_value(f"{param}.role", role, ["user", "assistant", "system"])
    raw_content = given.get("content", [])
    if not isinstance(raw_content, list):
        raise ClientError(
            "invalid_type",
            f"Invalid type for '{param}.content': expected an array.",
            f"{param}.content",
        )
    content: list[JSON] = []
    n_text = MESSAGE_OVERHEAD_TOKENS
    audio = bytearray()
    fmt = input_format
    for index, raw_part in enumerate(raw_content):
        part = dict(as_object(raw_part, f"{param}.content[{index}]"))
        kind = part.get("type")
        if kind in ("input_text", "text", "output_text"):
            n_text += text_tokens(str(part.get("text", "")))
            content.append(part)
        elif kind in ("input_audio", "audio", "output_audio"):
            if "audio" in part:
                audio += decode_audio(part.pop("audio"), f"{param}.content[{index}].audio")
            part.setdefault("transcript", None)
            content.append(part)
        else:
            content.append(part)
    ms_per_token = ASSISTANT_AUDIO_MS_PER_TOKEN if role == "assistant" else USER_AUDIO_MS_PER_TOKEN
    item = events.message_item(
        beta=beta, item_id=item_id, status="completed", role=str(role), content=content
    )
    return ConvItem(
        item_id,
        item,
        n_text,
        audio_tokens(audio_ms(len(audio), fmt), ms_per_token),
        bytes(audio),
        fmt,
    )


def decode_audio(value: Any, param: str) -> bytes:
    if value is None:
        raise ClientError(
            "missing_required_parameter", f"Missing required parameter: '{param}'.", param
        )
    if not isinstance(value, str):
        raise ClientError(
            "invalid_type",
            f"Invalid type for '{param}': expected a base64-encoded string.",
            param,
        )
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ClientError(
            "invalid_value",
            f"Invalid '{param}': expected base64-encoded audio data.",
            param,
        ) from None
