"""Statistics and time helpers the analyses share: nearest-rank percentiles, stored times as UTC."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime


def percentile(values: Iterable[float | None], share: float) -> float | None:
    """Nearest-rank percentile (a value that occurred), skipping None and NaN; None if none."""
    ordered = sorted(v for v in values if v is not None and v == v)
    if not ordered:
        return None
    return float(ordered[max(math.ceil(share * len(ordered)), 1) - 1])


def as_utc(value: datetime) -> datetime:
    """Stored times are UTC; SQLite hands them back naive."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
