"""Audio stored as segments: the consecutive chunks of one side and response in one row.

A row per chunk made audio the writer's bottleneck (thousands of small blobs a second); a segment
row holds the chunks' bytes back to back and, in `chunks`, each chunk's `seq`, its time after the
row's `ts` in microseconds and its length, so that readers get every chunk back as it was relayed.
Rows with `chunks` NULL hold one chunk (all rows written before segments).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import timedelta
from operator import attrgetter
from typing import Any

import orjson

from storage.records import AudioRecord

MAX_SEGMENT_BYTES = 1 << 20  # keeps a row, and what a reader loads for one turn, small
_MICROSECOND = timedelta(microseconds=1)
_same_segment = attrgetter("response_id", "item_id", "audio_format", "sample_rate")


class _Segment:
    """The chunks gathered so far for one row: its first chunk's record, then every chunk's
    bytes and [seq, µs after the first, length]."""

    __slots__ = ("chunks", "first", "key", "last_seq", "parts", "size")

    def __init__(self, record: AudioRecord, data: bytes) -> None:
        self.first = record
        self.key = _same_segment(record)
        self.parts = [data]
        self.chunks = [[record.seq, 0, len(data)]]
        self.size = len(data)
        self.last_seq = record.seq

    def row(self) -> dict[str, Any]:
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
            "data": b"".join(self.parts),
            "last_seq": self.last_seq,
            "chunks": orjson.dumps(self.chunks).decode() if len(self.chunks) > 1 else None,
        }


def merge(chunks: Iterable[tuple[AudioRecord, bytes]]) -> list[dict[str, Any]]:
    """Segment rows for decoded chunks (in `seq` order within each session): no dict per chunk,
    as this runs for every audio event the writer stores."""
    segments: list[_Segment] = []
    open_by_side: dict[tuple[str, str], _Segment] = {}
    for record, data in chunks:
        side = (record.session_id, record.direction)
        segment = open_by_side.get(side)
        if (
            segment is not None
            and segment.key == _same_segment(record)
            and segment.size + len(data) <= MAX_SEGMENT_BYTES
        ):
            offset_us = (record.ts - segment.first.ts) // _MICROSECOND
            segment.chunks.append([record.seq, offset_us, len(data)])
            segment.parts.append(data)
            segment.size += len(data)
            segment.last_seq = record.seq
            continue
        segment = open_by_side[side] = _Segment(record, data)
        segments.append(segment)
    return [segment.row() for segment in segments]


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
