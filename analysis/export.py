"""Session exports: events as JSONL, audio as WAV at the recorded rate, streamed to the file."""

from __future__ import annotations

import heapq
import json
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

import orjson

# WAVE format tags and bits per sample of the Realtime API's audio formats.
WAV_FORMATS = {"pcm16": (1, 16), "g711_alaw": (6, 8), "g711_ulaw": (7, 8)}
SILENCE = {"pcm16": b"\x00\x00", "g711_alaw": b"\xd5", "g711_ulaw": b"\xff"}
SIDES = {"user": "client", "assistant": "server"}
# The only rates the Realtime API and GPT-Live send and accept (GPT-Live's WebSocket also does
# pcm16 at 16 kHz); anything else in the database is damage.
API_FORMATS = {("pcm16", 24_000), ("pcm16", 16_000), ("g711_alaw", 8_000), ("g711_ulaw", 8_000)}
#: Longest silence kept in a conversation WAV; longer ones are shortened to this.
MAX_GAP_S = 60
MAX_RIFF_BYTES = 0xFFFF_FFFF  # the RIFF size field is 32 bits
BLOCK_FRAMES = 1 << 16  # silence and stereo are produced this many frames at a time


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
        # SQLite hands back naive datetimes; rtrec stores UTC, so say so as `sessions --json` does.
        return orjson.dumps(row, default=_default, option=orjson.OPT_NAIVE_UTC) + b"\n"
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
    if len(body) + 8 + data_bytes > MAX_RIFF_BYTES:
        raise ExportError(
            f"{data_bytes:,} bytes of audio do not fit in a WAV file (4 GiB at most); "
            "export one side at a time"
        )
    body += b"data" + struct.pack("<I", data_bytes)
    return b"RIFF" + struct.pack("<I", len(body) + data_bytes) + body


@dataclass(frozen=True)
class Placed:
    """A chunk's bytes starting at `frame` (sample frames from the start) of one track."""

    frame: int
    data: bytes


@dataclass
class WavPlan:
    """Where every chunk goes, worked out before a byte is written so the WAV can stream."""

    audio_format: str
    rate: int
    tracks: list[list[Placed]]  # one per channel, each in frame order, never overlapping
    frames: int
    notes: list[str] = field(default_factory=list)  # one line each, for the user

    @property
    def channels(self) -> int:
        return len(self.tracks)

    @property
    def data_bytes(self) -> int:
        return self.frames * self.channels * len(SILENCE[self.audio_format])

    def header(self) -> bytes:
        return wav_header(self.audio_format, self.rate, self.channels, self.data_bytes)


def _usable(chunks: Sequence[dict[str, Any]], notes: list[str]) -> list[dict[str, Any]]:
    """The chunks in a format and at a rate the APIs use; the database may hold others."""
    usable = [c for c in chunks if (c["audio_format"], c["sample_rate"]) in API_FORMATS]
    if len(usable) < len(chunks):
        bad = sorted({(str(c["audio_format"]), c["sample_rate"]) for c in chunks} - API_FORMATS)
        described = ", ".join(f"{f} at {r} Hz" for f, r in bad)
        notes.append(f"skipped {len(chunks) - len(usable)} audio chunk(s) in {described}")
    if chunks and not usable:
        raise ExportError(
            "no audio in a format the Realtime API or GPT-Live sends "
            "(pcm16 at 24000 or 16000 Hz, G.711 at 8000 Hz): the database holds something else"
        )
    return usable


def _one_format(chunks: Sequence[dict[str, Any]]) -> tuple[str, int]:
    formats = {(c["audio_format"], c["sample_rate"]) for c in chunks}
    if len(formats) != 1:
        described = ", ".join(f"{f} at {r} Hz" for f, r in sorted(formats))
        raise ExportError(f"the audio changes format ({described}); export each side on its own")
    return formats.pop()


def _whole_frames(data: bytes, width: int) -> bytes:
    """A truncated pcm16 chunk loses its odd byte rather than shifting every sample after it."""
    return data[: len(data) - len(data) % width]


def side_plan(chunks: Sequence[dict[str, Any]]) -> WavPlan:
    """One side's audio as it was sent: the chunks back to back."""
    notes: list[str] = []
    usable = _usable(chunks, notes)
    audio_format, rate = _one_format(usable)
    width = len(SILENCE[audio_format])
    track, frames = [], 0
    for chunk in usable:
        data = _whole_frames(chunk["data"], width)
        track.append(Placed(frames, data))
        frames += len(data) // width
    return WavPlan(audio_format, rate, [track], frames, notes)


def conversation_plan(
    user: Sequence[dict[str, Any]], assistant: Sequence[dict[str, Any]]
) -> WavPlan:
    """Stereo, user left and assistant right, each chunk at the time the proxy saw it.

    Audio sent faster than real time queues behind the chunk before it. A silence longer than
    `MAX_GAP_S` on both sides is shortened to it, so a session left open for a day does not
    turn into gigabytes of nothing.
    """
    notes: list[str] = []
    sides = (_usable(user, notes), _usable(assistant, notes))
    audio_format, rate = _one_format([*sides[0], *sides[1]])
    width = len(SILENCE[audio_format])
    start = min(_ts(c) for side in sides for c in side)
    tracks: list[list[Placed]] = [[], []]
    free = [0, 0]  # the first frame after each track's audio so far
    busy = shift = shortened = 0  # shift: frames taken out of long gaps so far
    tagged = [[(index, c) for c in side] for index, side in enumerate(sides)]
    for index, chunk in heapq.merge(*tagged, key=lambda item: _ts(item[1])):
        at = int((_ts(chunk) - start) * rate) - shift
        if at - busy > MAX_GAP_S * rate:
            shortened += 1
            shift += at - busy - MAX_GAP_S * rate
            at = busy + MAX_GAP_S * rate
        data = _whole_frames(chunk["data"], width)
        frame = max(at, free[index])
        tracks[index].append(Placed(frame, data))
        free[index] = frame + len(data) // width
        busy = max(busy, free[index])
    if shortened:
        notes.append(f"shortened {shortened} silence(s) longer than {MAX_GAP_S} s to {MAX_GAP_S} s")
    return WavPlan(audio_format, rate, tracks, max(free), notes)


def _ts(chunk: dict[str, Any]) -> float:
    ts: datetime = chunk["ts"]
    return (ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts).timestamp()


def _silence(frames: int, silence: bytes) -> Iterator[bytes]:
    while frames > 0:
        count = min(frames, BLOCK_FRAMES)
        yield silence * count
        frames -= count


def _track_bytes(track: Sequence[Placed], frames: int, silence: bytes) -> Iterator[bytes]:
    """One channel from first frame to `frames`, silence in bounded pieces between chunks."""
    cursor = 0
    for placed in track:
        yield from _silence(placed.frame - cursor, silence)
        yield placed.data
        cursor = placed.frame + len(placed.data) // len(silence)
    yield from _silence(frames - cursor, silence)


def _take(pieces: Iterator[bytes], buffer: bytearray, size: int) -> bytes:
    while len(buffer) < size:
        buffer += next(pieces)
    taken = bytes(buffer[:size])
    del buffer[:size]
    return taken


def _stereo_blocks(plan: WavPlan) -> Iterator[bytes]:
    """Interleaved frames, a block at a time: memory stays bounded however long the session."""
    silence = SILENCE[plan.audio_format]
    width = len(silence)
    left = _track_bytes(plan.tracks[0], plan.frames, silence)
    right = _track_bytes(plan.tracks[1], plan.frames, silence)
    buffers = (bytearray(), bytearray())
    for first in range(0, plan.frames, BLOCK_FRAMES):
        count = min(BLOCK_FRAMES, plan.frames - first)
        left_bytes = _take(left, buffers[0], count * width)
        right_bytes = _take(right, buffers[1], count * width)
        block = bytearray(count * 2 * width)
        for offset in range(width):
            block[offset :: 2 * width] = left_bytes[offset::width]
            block[width + offset :: 2 * width] = right_bytes[offset::width]
        yield bytes(block)


def data_blocks(plan: WavPlan) -> Iterator[bytes]:
    """The WAV's data chunk in pieces, in order."""
    if plan.channels == 1:
        return _track_bytes(plan.tracks[0], plan.frames, SILENCE[plan.audio_format])
    return _stereo_blocks(plan)


def write_wav(out: IO[bytes], plan: WavPlan, progress: Callable[[int], None] | None = None) -> None:
    """Stream `plan` as a WAV file; `progress` hears the seconds of audio written so far."""
    out.write(plan.header())
    frame_bytes = plan.channels * len(SILENCE[plan.audio_format])
    written = 0
    for block in data_blocks(plan):
        out.write(block)
        written += len(block)
        if progress is not None:
            progress(written // frame_bytes // plan.rate)


def side_audio(chunks: Sequence[dict[str, Any]]) -> tuple[str, int, bytes]:
    """One side's audio in memory, for the dashboard's players."""
    plan = side_plan(chunks)
    return plan.audio_format, plan.rate, b"".join(data_blocks(plan))


def conversation_audio(
    user: Sequence[dict[str, Any]], assistant: Sequence[dict[str, Any]]
) -> tuple[str, int, bytes]:
    """Both sides as stereo in memory, for the dashboard's players."""
    plan = conversation_plan(user, assistant)
    return plan.audio_format, plan.rate, b"".join(data_blocks(plan))
