"""Audio stored as segments: the consecutive chunks of one side and response in one row.

A row per chunk made audio the writer's bottleneck (thousands of small blobs a second); a segment
row holds the chunks' bytes back to back and, in `chunks`, each chunk's `seq`, its time after the
row's `ts` in microseconds and its length, so that readers get every chunk back as it was relayed.
Rows with `chunks` NULL hold one chunk (all rows written before segments).
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from operator import attrgetter
from typing import Any

import orjson
import pybase64

from storage.records import AudioRecord

MAX_SEGMENT_BYTES = 1 << 20  # keeps a row, and what a reader loads for one turn, small
_MICROSECOND = timedelta(microseconds=1)
_same_segment = attrgetter("response_id", "item_id", "audio_format", "sample_rate")


class _Segment:
    """The chunks gathered so far for one row: its first chunk's record, then every chunk's
    bytes (or base64 text) and [seq, µs after the first, length in bytes]."""

    __slots__ = ("chunks", "first", "key", "last_seq", "parts", "size")

    def __init__(self, record: AudioRecord, part: Any, size: int) -> None:
        self.first = record
        self.key = _same_segment(record)
        self.parts = [part]
        self.chunks = [[record.seq, 0, size]]
        self.size = size
        self.last_seq = record.seq

    def row(self, data: bytes) -> dict[str, Any]:
        first = self.first
        return {
            "session_id": first.session_id,
            "seq": first.seq,
            "ts": first.ts,
            "direction": first.direction,
            "response_id": first.response_id,
            "item_id": first.item_id,
            "audio_format": first.audio_format,
            "sample_rate": first.sample_rate,
            "data": data,
            "last_seq": self.last_seq,
            "chunks": orjson.dumps(self.chunks).decode() if len(self.chunks) > 1 else None,
        }


def _gather(chunks: Iterable[tuple[AudioRecord, Any, int]]) -> list[_Segment]:
    """Chunks (record, part, size in bytes; in `seq` order within each session) into segments:
    no dict per chunk, as this runs for every audio event the writer stores."""
    segments: list[_Segment] = []
    open_by_side: dict[tuple[str, str], _Segment] = {}
    for record, part, size in chunks:
        side = (record.session_id, record.direction)
        segment = open_by_side.get(side)
        if (
            segment is not None
            and segment.key == _same_segment(record)
            and segment.size + size <= MAX_SEGMENT_BYTES
        ):
            offset_us = (record.ts - segment.first.ts) // _MICROSECOND
            segment.chunks.append([record.seq, offset_us, size])
            segment.parts.append(part)
            segment.size += size
            segment.last_seq = record.seq
            continue
        segment = open_by_side[side] = _Segment(record, part, size)
        segments.append(segment)
    return segments


def merge(chunks: Iterable[tuple[AudioRecord, bytes]]) -> list[dict[str, Any]]:
    """Segment rows for decoded chunks (in `seq` order within each session)."""
    segments = _gather((record, data, len(data)) for record, data in chunks)
    return [segment.row(b"".join(segment.parts)) for segment in segments]


def _unpadded(text: str) -> bool:
    return len(text) % 4 == 0 and not text.endswith("=")


def merge_base64(records: Sequence[AudioRecord]) -> list[dict[str, Any]] | None:
    """The rows `merge` makes of these records' decoded audio, decoding each segment's text
    at once; None unless every text is whole base64 quanta without padding (what audio chunks
    of 3n bytes are) and valid, for `merge` to decide chunk by chunk.

    Base64 decodes each 4-character quantum on its own, so unpadded texts decode back to back as
    they do one by one; one decode per segment instead of one per chunk and a join of the bytes
    halved the writer's audio time (the join read every chunk back from memory).
    """
    if not all(_unpadded(record.audio_base64) for record in records):
        return None
    segments = _gather(
        (record, record.audio_base64, len(record.audio_base64) // 4 * 3) for record in records
    )
    try:
        return [
            segment.row(pybase64.b64decode("".join(segment.parts), validate=True))
            for segment in segments
        ]
    except (binascii.Error, ValueError):  # not base64 (or not ASCII): `merge` says which chunk
        return None


def expand(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """One dict per relayed chunk, with its own `seq`, `ts` and `data`, from stored rows."""
    for row in rows:
        chunks = row.pop("chunks", None)
        row.pop("last_seq", None)
        if chunks is None:
            yield row
            continue
        data: bytes = row["data"]
        start = 0
        for seq, offset_us, size in orjson.loads(chunks):
            chunk = {**row, "seq": seq, "ts": row["ts"] + offset_us * _MICROSECOND}
            chunk["data"] = data[start : start + size]
            start += size
            yield chunk


def expand_sizes(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """One dict per relayed chunk with its `seq` and `size_bytes`, from rows read without data."""
    for row in rows:
        chunks = row.pop("chunks", None)
        if chunks is None:
            yield row
            continue
        for seq, _offset_us, size in orjson.loads(chunks):
            yield {**row, "seq": seq, "size_bytes": size}
