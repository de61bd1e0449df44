"""Makes a record storable where the database refuses some values (spec §3 rules)."""

from __future__ import annotations

import dataclasses
from typing import Any

from storage.records import Record

NUL_TEXT = "\\u0000"  # PostgreSQL text and JSONB cannot hold U+0000: keep it visible as text
INT64_MAX = 2**63 - 1


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", NUL_TEXT)
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT64_MAX:
        return str(value)  # past 64 bits: kept as text
    return value


def storable(record: Record) -> Record:
    """A copy of `record` with NUL characters escaped and oversized integers turned to text."""
    changes = {
        field.name: _clean(getattr(record, field.name))
        for field in dataclasses.fields(record)
        if not isinstance(getattr(record, field.name), bytes | float)
    }
    return dataclasses.replace(record, **changes)
