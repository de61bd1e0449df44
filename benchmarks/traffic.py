"""The Realtime traffic the benchmarks relay: GA event shapes, pre-built, with a timestamp in each.

Every message starts with `{"event_id":"evt_<20 digits>",` where the digits are the sender's
`time.monotonic_ns()` (one clock for every process on the machine), so a receiver gets the
one-way latency of any frame from its first bytes.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.wire import frame_header

STAMP_PREFIX = b'{"event_id":"evt_'
STAMP_MARK = b"evt_"
MODEL = "gpt-realtime"
PLAN_PREFIX = "rtrec-bench "
CLIENT_APPEND_MS = 100  # one input_audio_buffer.append every 100 ms, as voice agents send
SERVER_DELTA_MS = 50  # audio per output_audio.delta
SMALL_FRAME_BYTES = 200
_FILL = "@@FILL@@"  # placeholder for bulk content (audio, padding) in event templates


def _pcm16_sine(ms: int, rate: int = 24_000, hz: float = 220.0) -> bytes:
    samples = rate * ms // 1000
    return b"".join(
        int(8000 * math.sin(2 * math.pi * hz * i / rate)).to_bytes(2, "little", signed=True)
        for i in range(samples)
    )


CLIENT_AUDIO_B64 = base64.b64encode(_pcm16_sine(CLIENT_APPEND_MS))  # 4,800 B -> 6,400 chars
SERVER_AUDIO_B64 = base64.b64encode(_pcm16_sine(SERVER_DELTA_MS, hz=330.0))  # 2,400 B


@dataclass(frozen=True)
class Plan:
    """What the client asks the fake upstream to do, sent in its first `session.update`."""

    mode: str  # "blast": as fast as flow control allows; "paced": real-time spacing
    mix: str  # "voice" or "small"
    server_frames: int = 0  # blast: server messages after session.updated
    client_frames: int = 0  # blast: client messages after the plan
    duration_s: float = 0.0  # paced: how long to stream
    window: int = 0  # blast: messages a side may send ahead of what it got from the other
    tag: str = ""  # names the latency sample files of a paced run
    warmup_until_ns: int = 0  # paced: samples stamped before this are not kept

    def allowed(self, from_client: bool, received: int) -> int:
        """How many messages one side may have sent, having received `received` from the other:
        both stay in step, like a conversation, so no relay is ever asked to buffer a backlog."""
        if not self.window:
            return self.client_frames if from_client else self.server_frames
        ratio = self.server_frames / max(1, self.client_frames)
        return self.window + int(received / ratio if from_client else received * ratio)

    def session_update(self) -> bytes:
        session = {"type": "realtime", "instructions": PLAN_PREFIX + json.dumps(asdict(self))}
        return json.dumps({"type": "session.update", "session": session}).encode()

    @classmethod
    def from_event(cls, event: Any) -> Plan | None:
        """The plan inside a decoded client `session.update`, if it carries one."""
        session = event.get("session") if isinstance(event, dict) else None
        text = session.get("instructions") if isinstance(session, dict) else None
        if not isinstance(text, str) or not text.startswith(PLAN_PREFIX):
            return None
        return cls(**json.loads(text[len(PLAN_PREFIX) :]))


def stamp_of(head: bytes) -> int | None:
    """The sender's monotonic ns in the event id at the start of a message, if any."""
    at = head.find(STAMP_MARK)
    if at < 0:
        return None
    digits = head[at + 4 : at + 24]
    return int(digits) if len(digits) == 20 and digits.isdigit() else None


_HEADERS: dict[tuple[int, bool], bytes] = {}


def payload(rest: bytes, stamp: int) -> bytes:
    """A message: the stamped event id, then `rest` (the event's other keys)."""
    return b"".join((STAMP_PREFIX, b"%020d" % stamp, b'",', rest))


def frame(rest: bytes, stamp: int, *, masked: bool) -> bytes:
    """One whole WebSocket frame: the stamped event id, then `rest` (the event's other keys)."""
    size = len(STAMP_PREFIX) + 22 + len(rest)
    header = _HEADERS.get((size, masked))
    if header is None:
        header = _HEADERS[(size, masked)] = frame_header(size, masked=masked)
    return b"".join((header, STAMP_PREFIX, b"%020d" % stamp, b'",', rest))


def _event(event_type: str, **fields: Any) -> bytes:
    """The keys after `event_id` of an event, as compact JSON ending in `}`."""
    return json.dumps({"type": event_type, **fields}, separators=(",", ":"))[1:].encode()


def _usage() -> dict[str, Any]:
    return {
        "total_tokens": 320,
        "input_tokens": 132,
        "output_tokens": 188,
        "input_token_details": {
            "text_tokens": 59,
            "audio_tokens": 73,
            "image_tokens": 0,
            "cached_tokens": 64,
            "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 64, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": 41, "audio_tokens": 147},
    }


def session_created() -> bytes:
    session = {
        "type": "realtime",
        "object": "realtime.session",
        "id": "sess_BenchSession00000001",
        "model": MODEL,
        "output_modalities": ["audio"],
        "instructions": "You are a friendly voice assistant. Keep answers short.",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": {"model": "gpt-4o-mini-transcribe"},
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "silence_duration_ms": 200,
                },
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"},
        },
    }
    return _event("session.created", session=session)


def session_updated() -> bytes:
    return session_created().replace(b'"session.created"', b'"session.updated"', 1)


def voice_turn(turn: int) -> list[bytes]:
    """A server turn: VAD, transcription with usage, a response of 20 audio and 10 transcript
    deltas, `response.done` with usage and `rate_limits.updated`: 37 messages."""
    rid, user, reply = f"resp_{turn:019d}", f"item_u{turn:018d}", f"item_a{turn:018d}"
    refs = {"response_id": rid, "item_id": reply, "output_index": 0, "content_index": 0}
    frames = [
        _event("input_audio_buffer.speech_started", audio_start_ms=turn * 3000, item_id=user),
        _event("input_audio_buffer.speech_stopped", audio_end_ms=turn * 3000 + 2000, item_id=user),
        _event("input_audio_buffer.committed", previous_item_id=None, item_id=user),
        _event(
            "conversation.item.input_audio_transcription.completed",
            item_id=user,
            content_index=0,
            transcript="What's the weather like on Mars today?",
            usage={
                "type": "tokens",
                "total_tokens": 37,
                "input_tokens": 29,
                "input_token_details": {"text_tokens": 0, "audio_tokens": 29},
                "output_tokens": 8,
            },
        ),
        _event("response.created", response=_response(rid, "in_progress", None)),
    ]
    audio = _event("response.output_audio.delta", **refs, delta=_FILL).replace(
        _FILL.encode(), SERVER_AUDIO_B64
    )
    for index in range(20):
        frames.append(audio)
        if index % 2:
            words = f" and the {index} words of it"
            frames.append(
                _event(
                    "response.output_audio_transcript.delta",
                    **refs,
                    delta=words,
                    obfuscation="xZfgUJ39VQQm",
                )
            )
    frames.append(_event("response.done", response=_response(rid, "completed", _usage())))
    frames.append(
        _event(
            "rate_limits.updated",
            rate_limits=[
                {"name": "tokens", "limit": 40000, "remaining": 39716, "reset_seconds": 2.2}
            ],
        )
    )
    return frames


def _response(rid: str, status: str, usage: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "object": "realtime.response",
        "id": rid,
        "status": status,
        "status_details": None,
        "output": [],
        "conversation_id": "conv_BenchConversation0001",
        "output_modalities": ["audio"],
        "max_output_tokens": "inf",
        "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"}},
        "usage": usage,
        "metadata": None,
    }


def _padded(event_type: str, **fields: Any) -> bytes:
    """An event whose whole payload (with the stamped event id) is `SMALL_FRAME_BYTES` long;
    the text that fills it replaces `_FILL` in `fields`."""
    bare = _event(event_type, **fields)
    pad = SMALL_FRAME_BYTES - len(STAMP_PREFIX) - 22 - len(bare) + len(_FILL)
    return bare.replace(_FILL.encode(), ("lorem ipsum " * 20)[:pad].encode())


SMALL_SERVER = _padded(
    "response.output_text.delta",
    response_id="resp_BenchSmall000000001",
    item_id="item_BenchSmall000000001",
    output_index=0,
    content_index=0,
    delta=_FILL,
)
SMALL_CLIENT = _padded(
    "conversation.item.create",
    item={
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": _FILL}],
    },
)
CLIENT_APPEND = b'"type":"input_audio_buffer.append","audio":"' + CLIENT_AUDIO_B64 + b'"}'


def server_events(mix: str) -> Iterator[bytes]:
    """The endless stream of server events (without event ids) of a traffic mix."""
    if mix == "small":
        while True:
            yield SMALL_SERVER
    turn = 0
    while True:
        yield from voice_turn(turn)
        turn += 1


def client_event(mix: str) -> bytes:
    """What the client sends over and over: 100 ms audio appends, or small frames."""
    return SMALL_CLIENT if mix == "small" else CLIENT_APPEND


# Per voice turn the server sends 37 messages while the client appends 10 (one second of audio
# per 3.7 server messages at real-time pace); the small mix keeps the same proportion.
SERVER_PER_CLIENT = 3.7
