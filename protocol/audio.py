"""Where audio travels in an event, and taking it out: one walk for every API rtrec records.

Base64 audio rides in an `audio` string anywhere in an event (appends, fixtures, the `audio` of a
conversation item's content part, in items of `conversation.item.*`, `response.output_item.*`
and `response.done`, client and server, beta and GA, GPT-Live) and in the `delta` of an audio
delta (`response.audio.delta`, `response.output_audio.delta`, `session.output_audio.delta`).
An `audio` that is an object is a session's audio configuration, not audio.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

AUDIO_FIELD = "audio"
DELTA_FIELD = "delta"


def base64_decoded_size(text: str) -> int:
    """Bytes that a base64 string decodes to, computed without decoding it."""
    length = len(text.rstrip())
    if length == 0:
        return 0
    padding = (text[length - 1] == "=") + (length > 1 and text[length - 2] == "=")
    return length * 3 // 4 - padding


def is_audio_delta(event_type: str) -> bool:
    """`*.audio.delta` / `*.output_audio.delta`: its `delta` is audio (a transcript delta's is
    `*.audio_transcript.delta`, text). Decided by the name's shape, so a new API's audio delta
    (GPT-Live's `session.output_audio.delta`) needs no list."""
    parts = event_type.split(".")
    return len(parts) >= 2 and parts[-1] == DELTA_FIELD and parts[-2].endswith(AUDIO_FIELD)


@dataclass(slots=True)
class StrippedAudio:
    """What `strip_audio` took out of an event."""

    #: The event's own audio (an append's `audio`, an audio delta's `delta`): a chunk to record.
    stream: str | None = None
    #: Every other base64 audio string (content parts of items), removed only when asked.
    nested: list[str] = field(default_factory=list)

    @property
    def all(self) -> list[str]:
        return ([self.stream] if self.stream is not None else []) + self.nested


def strip_audio(event_type: str, event: dict[str, Any], everywhere: bool) -> StrippedAudio:
    """Replace base64 audio in `event` (in place) by its decoded byte count; say what was taken.

    The event's own audio always goes (it is stored apart, as audio chunks); with `everywhere`,
    so does every `audio` string nested in items and content parts (`--record text`/`metadata`).
    """
    stripped = StrippedAudio()
    own = DELTA_FIELD if is_audio_delta(event_type) else AUDIO_FIELD
    value = event.get(own)
    if isinstance(value, str):
        stripped.stream = value
        event[own] = base64_decoded_size(value)
    if everywhere:
        stripped.nested = strip_nested_audio(event)
    return stripped


def strip_nested_audio(value: Any) -> list[str]:
    """Replace every `audio` string inside `value` (any JSON value) by its decoded byte count."""
    found: list[str] = []
    # Iterative: an event may nest deeper than Python's recursion limit and still be valid JSON.
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            audio = item.get(AUDIO_FIELD)
            if isinstance(audio, str):
                found.append(audio)
                item[AUDIO_FIELD] = base64_decoded_size(audio)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found
