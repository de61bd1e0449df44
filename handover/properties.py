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


def _value_lists(text: str) -> list[str]:
    """`customer=acme,globex;env=prod` inline, else the lines of the file named by `text`."""
    if "=" in text:
        return text.split(";")
    try:
        with open(text, encoding="utf-8") as lines:
            return [line.split("#", 1)[0] for line in lines]
    except OSError as error:
        raise ValueError(f"file {text!r} cannot be read ({error.strerror})") from None


def metric_property_values(text: str) -> dict[str, tuple[str, ...]]:
    """`--metric-property-values customer=acme,globex;env=prod` (or a file of such lines) ->
    {"customer": ("acme", "globex"), "env": ("prod",)}; ValueError says what is wrong."""
    allowed: dict[str, tuple[str, ...]] = {}
    if not text.strip():
        return allowed
    for entry in filter(None, (part.strip() for part in _value_lists(text.strip()))):
        raw_name, sep, raw_values = entry.partition("=")
        name = property_name(raw_name)
        if not sep or name is None:
            raise ValueError(f"{entry!r} is not NAME=VALUE,VALUE,…")
        if name in RESERVED_LABELS:
            raise ValueError(f"{name!r} is already a label of the cost and token counters")
        values = tuple(v.strip() for v in raw_values.split(",") if v.strip())
        allowed[name] = tuple(dict.fromkeys(allowed.get(name, ()) + values))
    return allowed
