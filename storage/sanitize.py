"""Makes a record storable where the database refuses some values.

The rules: docs/schema.md#rules-every-write-follows.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from typing import Any

import orjson

from storage.records import Record

NUL_TEXT = "\\u0000"  # PostgreSQL text and JSONB cannot hold U+0000: keep it visible as text
INT64_MAX = 2**63 - 1
MAX_SHORT_TEXT = 200  # the String(200) columns: type, event_id, response_id, item_id, ...


def _text(value: str) -> str:
    value = value.replace("\x00", NUL_TEXT)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: kept visible as their escape
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def _scalar(value: Any) -> Any:
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT64_MAX:
        return str(value)  # past 64 bits: kept as text
    return _non_finite_text(value)


def _non_finite_text(value: Any) -> Any:
    """NaN and infinities are not JSON: kept as the text a client sends for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _has_non_finite(value: Any) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            return True
    return False


def json_bytes(value: Any) -> bytes:
    """UTF-8 JSON of a payload, for every database: orjson's speed, the stdlib past 64-bit
    integers, and NaN and infinities kept as text (orjson would write `null`, the stdlib invalid
    JSON)."""
    try:
        text = orjson.dumps(value)
    except TypeError:  # integers past 64 bits: the stdlib writes them
        try:
            return json.dumps(value, ensure_ascii=False, allow_nan=False).encode()
        except ValueError:
            return json.dumps(_clean(value, _non_finite_text), ensure_ascii=False).encode()
    if b"null" in text and _has_non_finite(value):  # orjson wrote NaN or an infinity as null
        return json_bytes(_clean(value, _non_finite_text))
    return text


def json_text(value: Any) -> str:
    """`json_bytes` as text; orjson's common case inline, as this runs for every event."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        return json_bytes(value).decode()
    # Looked for in the text, not the bytes: CPython's search of bytes took ~0.4 µs of a 200-byte
    # event's 1.1, its search of an ASCII str a fraction of that.
    if "null" in text and _has_non_finite(value):
        return json_bytes(value).decode()
    return text


def _clean(value: Any, scalar: Callable[[Any], Any] = _scalar) -> Any:
    """A copy of `value` with every scalar in dicts, lists and tuples (properties are tuples)
    through `scalar`. Iterative: payloads nest deeper than Python recursion allows."""
    root: list[Any] = [None]
    pending: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    tuples: list[tuple[Any, Any]] = []  # (parent, slot) of every tuple, in the order met
    while pending:
        item, parent, slot = pending.pop()
        if isinstance(item, dict):
            copied: dict[Any, Any] = {}
            parent[slot] = copied
            for key, child in item.items():
                name = scalar(key)
                copied[name] = None
                pending.append((child, copied, name))
        elif isinstance(item, list | tuple):
            parent[slot] = copied_list = [None] * len(item)
            pending.extend((child, copied_list, n) for n, child in enumerate(item))
            if isinstance(item, tuple):  # filled below; turned back into a tuple at the end
                tuples.append((parent, slot))
        else:
            parent[slot] = scalar(item)
    # Innermost first (they were met last), so an outer tuple takes its inner tuples whole.
    for parent, slot in reversed(tuples):
        parent[slot] = tuple(parent[slot])
    return root[0]


def storable(record: Record) -> Record:
    """A copy of `record` that every database can hold.

    NUL characters, lone surrogates, NaN and integers past 64 bits become text; overlong short
    texts are cut to their column's width.
    """
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        if isinstance(value, bytes):
            continue
        value = _clean(value)
        if (
            field.name != "payload"
            and isinstance(value, str)
            and field.name not in ("path", "upstream", "close_reason", "transcript", "audio_base64")
        ):
            value = value[:MAX_SHORT_TEXT]
        changes[field.name] = value
    return dataclasses.replace(record, **changes)
