"""`--redact-pii` in the recorder: every text an event carries, redacted before it is recorded.

Delta streams (text, transcripts, function-call arguments) hold back their open tail: the run of
digits (or the last word) at the end of what has arrived, which the next delta could still turn
into a card number, a phone number or an address. The tail is stored with the next delta of the
stream, redacted together with it; what is still held when the stream ends is not stored in a
delta, and the stream's done event carries the whole text, redacted. So a card number spoken
across three deltas is `[CARD]` in the delta that completes it, and no delta holds a part of it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from protocol.audio import is_audio_delta
from protocol.pii import DEFAULT_REGION, held_tail_start, redact_pii

# Fields that name or identify rather than say anything: left as sent.
STRUCTURAL_FIELDS = frozenset(
    {
        "type",
        "id",
        "event_id",
        "item_id",
        "response_id",
        "call_id",
        "previous_item_id",
        "conversation_id",
        "object",
        "role",
        "status",
        "name",
        "model",
        "voice",
        "format",
        "reason",
        "code",
    }
)
DELTA_FIELD = "delta"
# Streams held at once per session; the oldest is forgotten (and its tail dropped) beyond this.
MAX_OPEN_STREAMS = 256
StreamKey = tuple[str, Any, Any, Any, Any]


def redact_strings(value: Any, region: str = DEFAULT_REGION) -> None:
    """Redact (in place) every string in `value` but those of `STRUCTURAL_FIELDS`."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if isinstance(child, str):
                    if key not in STRUCTURAL_FIELDS:
                        item[key] = redact_pii(child, region)
                elif isinstance(child, dict | list):
                    pending.append(child)
        elif isinstance(item, list):
            for index, child in enumerate(item):
                if isinstance(child, str):
                    item[index] = redact_pii(child, region)
                elif isinstance(child, dict | list):
                    pending.append(child)


def redacted_properties(
    properties: tuple[tuple[str, str], ...], region: str = DEFAULT_REGION
) -> tuple[tuple[str, str], ...]:
    """Session properties with personal data in their values replaced."""
    return tuple((name, redact_pii(value, region)) for name, value in properties)


def _stream_key(event_type: str, event: dict[str, Any]) -> StreamKey:
    family = event_type.rsplit(".", 1)[0]
    return (
        family,
        event.get("response_id"),
        event.get("item_id"),
        event.get("output_index"),
        event.get("content_index"),
    )


class PiiRedactor:
    """One session's redaction: events in place, with the open tail of each delta stream held."""

    def __init__(self, region: str = DEFAULT_REGION) -> None:
        self.region = region
        self._held: OrderedDict[StreamKey, str] = OrderedDict()

    def redact(self, event_type: str, event: dict[str, Any]) -> None:
        """Redact `event` (a decoded event, audio already stripped) in place."""
        delta = event.get(DELTA_FIELD)
        if event_type.endswith(".delta") and isinstance(delta, str):
            if not is_audio_delta(event_type):
                event[DELTA_FIELD] = self._released(_stream_key(event_type, event), delta)
            rest = {k: v for k, v in event.items() if k != DELTA_FIELD}
            redact_strings(rest, self.region)
            event.update(rest)
            return
        redact_strings(event, self.region)
        if event_type.endswith(".done"):
            self._forget(event)

    def _released(self, key: StreamKey, delta: str) -> str:
        # Redacted whole first: what a delta completes is replaced before any of it is released.
        # The held tail is redacted text too, and redacting it again with the next delta changes
        # nothing but what that delta completes.
        text = redact_pii(self._held.pop(key, "") + delta, self.region)
        cut = held_tail_start(text)
        if cut < len(text):
            self._held[key] = text[cut:]
            while len(self._held) > MAX_OPEN_STREAMS:
                self._held.popitem(last=False)
        return text[:cut]

    def _forget(self, event: dict[str, Any]) -> None:
        """A done event ends the streams of its item (or of its whole response)."""
        item_id = event.get("item_id")
        response = event.get("response")
        response_id = response.get("id") if isinstance(response, dict) else None
        ended = [
            key
            for key in self._held
            if (item_id is not None and key[2] == item_id)
            or (response_id is not None and key[1] == response_id)
        ]
        for key in ended:
            del self._held[key]
