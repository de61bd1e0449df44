"""Session property names: how a tag is spelt, and which ones may label the recorder's counters."""

from __future__ import annotations

import re

MAX_NAME_CHARS = 64
_NAME = re.compile(rf"[a-z0-9_]{{1,{MAX_NAME_CHARS}}}")

# Labels the cost and token counters already have: a property may not take their place.
RESERVED_LABELS = frozenset({"model", "kind", "direction", "modality", "cached"})


def property_name(raw: str) -> str | None:
    """`Customer-Id` -> `customer_id`: one spelling for headers and query parameters alike."""
    name = raw.strip().lower().replace("-", "_")
    return name if _NAME.fullmatch(name) else None


def metric_property_names(text: str) -> tuple[str, ...]:
    """`--metric-properties customer,env` -> ("customer", "env"); ValueError says what is wrong."""
    names: list[str] = []
    for raw in filter(None, (part.strip() for part in text.split(","))):
        name = property_name(raw)
        if name is None:
            raise ValueError(f"{raw!r} is not a property name (letters, digits, _ and -)")
        if name in RESERVED_LABELS:
            raise ValueError(f"{name!r} is already a label of the cost and token counters")
        if name not in names:
            names.append(name)
    return tuple(names)
