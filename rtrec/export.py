"""Session exports: events as JSONL, audio as WAV at the recorded rate."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import IO, Any

import orjson

# WAVE format tags and bits per sample of the Realtime API's audio formats.
WAV_FORMATS = {"pcm16": (1, 16), "g711_alaw": (6, 8), "g711_ulaw": (7, 8)}
SILENCE = {"pcm16": b"\x00\x00", "g711_alaw": b"\xd5", "g711_ulaw": b"\xff"}
SIDES = {"user": "client", "assistant": "server"}


class ExportError(Exception):
    """The export cannot be made as asked; the message says why in one line."""


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(type(value).__name__)


def _iso(value: datetime) -> str:
    if value.tzinfo is None:  # SQLite hands back naive datetimes; rtrec stores UTC.
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def event_line(event: dict[str, Any]) -> bytes:
    """One JSONL line for an `events` row."""
    row = {k: v for k, v in event.items() if k not in ("id", "session_id")}
    try:
        return orjson.dumps(row, default=_default) + b"\n"
    except TypeError:  # integers past 64 bits, which orjson refuses
        return json.dumps(row, default=_default, ensure_ascii=False).encode() + b"\n"


def write_jsonl(
    out: IO[bytes],
    events: Iterable[dict[str, Any]],
    progress: Callable[[int], None] | None = None,
    every: int = 10_000,
) -> int:
    """Stream events as JSONL; `progress` hears the running count every `every` events."""
    count = 0
    for event in events:
        out.write(event_line(event))
        count += 1
        if progress is not None and count % every == 0:
            progress(count)
    if progress is not None:
        progress(count)
    return count


def wav_header(audio_format: str, sample_rate: int, channels: int, data_bytes: int) -> bytes:
    """RIFF/WAVE header for PCM16 or G.711 (A-law/μ-law) audio."""
    tag, bits = WAV_FORMATS[audio_format]
    block_align = channels * bits // 8
    fmt = struct.pack(
        "<HHIIHH", tag, channels, sample_rate, sample_rate * block_align, block_align, bits
    )
    chunks = b""
    if tag != 1:  # non-PCM formats carry cbSize and a fact chunk with the sample count
        fmt += struct.pack("<H", 0)
        chunks = b"fact" + struct.pack("<II", 4, data_bytes // block_align)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + chunks
    body += b"data" + struct.pack("<I", data_bytes)
    return b"RIFF" + struct.pack("<I", len(body) + data_bytes) + body


def _one_format(chunks: Sequence[dict[str, Any]]) -> tuple[str, int]:
    formats = {(c["audio_format"], c["sample_rate"]) for c in chunks}
    if len(formats) != 1:
        described = ", ".join(f"{f} at {r} Hz" for f, r in sorted(formats))
        raise ExportError(f"the audio changes format ({described}); export each side on its own")
    return formats.pop()


def side_audio(chunks: Sequence[dict[str, Any]]) -> tuple[str, int, bytes]:
    """One side's audio as it was sent: the chunks back to back."""
    audio_format, rate = _one_format(chunks)
    return audio_format, rate, b"".join(c["data"] for c in chunks)


def _timeline(
    chunks: Sequence[dict[str, Any]], start: float, rate: int, silence: bytes
) -> bytearray:
    """Chunks at their arrival time, never overlapping: audio sent faster than real time queues."""
    frame_bytes = len(silence)
    track = bytearray()
    for chunk in chunks:
        at = int((_ts(chunk) - start) * rate) * frame_bytes
        if at > len(track):
            track += silence * ((at - len(track)) // len(silence))
        track += chunk["data"]
    return track


def conversation_audio(
    user: Sequence[dict[str, Any]], assistant: Sequence[dict[str, Any]]
) -> tuple[str, int, bytes]:
    """Stereo audio, user left and assistant right, each chunk at the time the proxy saw it."""
    audio_format, rate = _one_format([*user, *assistant])
    silence = SILENCE[audio_format]
    width = len(silence)
    start = min(_ts(c) for c in [*user, *assistant])
    left = _timeline(user, start, rate, silence)
    right = _timeline(assistant, start, rate, silence)
    length = max(len(left), len(right))
    left += silence * ((length - len(left)) // width)
    right += silence * ((length - len(right)) // width)
    stereo = bytearray(length * 2)
    for offset in range(width):
        stereo[offset :: 2 * width] = left[offset::width]
        stereo[width + offset :: 2 * width] = right[offset::width]
    return audio_format, rate, bytes(stereo)


def _ts(chunk: dict[str, Any]) -> float:
    ts: datetime = chunk["ts"]
    return (ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts).timestamp()


def write_wav(out: IO[bytes], audio_format: str, rate: int, channels: int, data: bytes) -> None:
    out.write(wav_header(audio_format, rate, channels, len(data)))
    out.write(data)
