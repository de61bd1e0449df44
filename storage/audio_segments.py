"""Audio stored as segments: the consecutive chunks of one side and response in one row.

A row per chunk made audio the writer's bottleneck (thousands of small blobs a second); a segment
row holds the chunks' bytes back to back and, in `chunks`, each chunk's `seq`, its time after the
row's `ts` in microseconds and its length, so that readers get every chunk back as it was relayed.
Rows with `chunks` NULL hold one chunk (all rows written before segments).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import timedelta
from operator import itemgetter
from typing import Any

import orjson

MAX_SEGMENT_BYTES = 1 << 20  # keeps a row, and what a reader loads for one turn, small
_MICROSECOND = timedelta(microseconds=1)
_same_segment = itemgetter("response_id", "item_id", "audio_format", "sample_rate")


def merge(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Segment rows for decoded chunk rows (in `seq` order within each session)."""
    segments: list[dict[str, Any]] = []
    parts: list[list[bytes]] = []
    chunks: list[list[list[int]]] = []
    keys: list[tuple[Any, ...]] = []  # each segment's `_SAME_SEGMENT` values
    sizes: list[int] = []
    open_by_side: dict[tuple[str, str], int] = {}
    for row in rows:
        side = (row["session_id"], row["direction"])
        data: bytes = row["data"]
        key = _same_segment(row)
        index = open_by_side.get(side)
        if (
            index is not None
            and keys[index] == key
            and sizes[index] + len(data) <= MAX_SEGMENT_BYTES
        ):
            segment = segments[index]
            offset_us = (row["ts"] - segment["ts"]) // _MICROSECOND
            chunks[index].append([row["seq"], offset_us, len(data)])
            parts[index].append(data)
            sizes[index] += len(data)
            segment["last_seq"] = row["seq"]
            continue
        open_by_side[side] = len(segments)
        segments.append({**row, "last_seq": row["seq"]})
        keys.append(key)
        sizes.append(len(data))
        parts.append([data])
        chunks.append([[row["seq"], 0, len(data)]])
    for segment, segment_parts, segment_chunks in zip(segments, parts, chunks, strict=True):
        segment["data"] = b"".join(segment_parts)
        several = len(segment_chunks) > 1
        segment["chunks"] = orjson.dumps(segment_chunks).decode() if several else None
    return segments


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
