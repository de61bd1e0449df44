"""Model prices (USD per 1M tokens, or per minute) and the cost of a response or transcription."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, fields, replace
from math import inf
from pathlib import Path
from typing import Any

_DATED_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class Price:
    """One model's prices; None where the model has no such price."""

    text_input: float | None = None
    text_cached_input: float | None = None
    text_output: float | None = None
    audio_input: float | None = None
    audio_cached_input: float | None = None
    audio_output: float | None = None
    image_input: float | None = None
    image_cached_input: float | None = None
    per_minute: float | None = None
    # GPT-Live: USD per minute of session, billed per second (active, and paused standby).
    session_per_minute: float | None = None
    standby_per_minute: float | None = None


PRICE_FIELDS = frozenset(f.name for f in fields(Price))


def _realtime(
    text: tuple[float, float, float],
    audio: tuple[float, float, float],
    image: tuple[float, float] | None = None,
) -> Price:
    return Price(*text, *audio, *(image or (None, None)))


# Sources in docs/prices.md#the-price-table; snapshots that priced differently have their own entry.
BUILTIN_PRICES: dict[str, Price] = {
    "gpt-realtime-2.1": _realtime((4.00, 0.40, 24.00), (32.00, 0.40, 64.00), (5.00, 0.50)),
    "gpt-realtime-2": _realtime((4.00, 0.40, 24.00), (32.00, 0.40, 64.00), (5.00, 0.50)),
    "gpt-realtime-1.5": _realtime((4.00, 0.40, 16.00), (32.00, 0.40, 64.00), (5.00, 0.50)),
    "gpt-realtime": _realtime((4.00, 0.40, 16.00), (32.00, 0.40, 64.00), (5.00, 0.50)),
    "gpt-realtime-2.1-mini": _realtime((0.60, 0.06, 2.40), (10.00, 0.30, 20.00), (0.80, 0.08)),
    "gpt-realtime-mini": _realtime((0.60, 0.06, 2.40), (10.00, 0.30, 20.00), (0.80, 0.08)),
    "gpt-4o-realtime-preview": _realtime((5.00, 2.50, 20.00), (40.00, 2.50, 80.00)),
    "gpt-4o-realtime-preview-2024-10-01": _realtime((5.00, 2.50, 20.00), (100.00, 20.00, 200.00)),
    "gpt-4o-mini-realtime-preview": _realtime((0.60, 0.30, 2.40), (10.00, 0.30, 20.00)),
    "gpt-4o-transcribe": Price(text_input=2.50, audio_input=2.50, text_output=10.00),
    "gpt-4o-mini-transcribe": Price(text_input=1.25, audio_input=1.25, text_output=5.00),
    "whisper-1": Price(per_minute=0.006),
    "gpt-realtime-whisper": Price(per_minute=0.017),
    "gpt-live-1": Price(session_per_minute=0.05),
    "gpt-live-1.1": Price(session_per_minute=0.05, standby_per_minute=0.02),
}


class PricingError(ValueError):
    """A pricing file that cannot be used; the message names the file and line."""


class PriceTable:
    """Prices by model name; a dated snapshot without its own entry takes its base model's."""

    def __init__(self, prices: dict[str, Price]) -> None:
        self._prices = dict(prices)

    def lookup(self, model: str | None) -> Price | None:
        name = self.priced_name(model)
        return None if name is None else self._prices[name]

    def priced_name(self, model: str | None) -> str | None:
        """The entry that prices `model`: its own, a dated snapshot's base model's, or None."""
        if not model:
            return None
        if model in self._prices:
            return model
        base = _DATED_SUFFIX.sub("", model)
        return base if base in self._prices else None

    def merged(self, overrides: dict[str, Price]) -> PriceTable:
        return PriceTable({**self._prices, **overrides})


def _line_of(text: str, needle: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return None


def _fail(path: Path, text: str, needle: str, problem: str) -> PricingError:
    line = _line_of(text, needle)
    where = f"{path}:{line}" if line else str(path)
    return PricingError(f"{where}: {problem}")


def load_pricing(path: Path) -> dict[str, Price]:
    """Parse a pricing TOML file (`[models."name"]` tables of USD prices)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PricingError(f"{path}: cannot read pricing file: {exc}") from exc
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PricingError(f"{path}: {exc}") from exc
    unknown_tables = set(document) - {"models"}
    if unknown_tables:
        name = sorted(unknown_tables)[0]
        raise _fail(path, text, name, f'unknown table or key {name!r} (expected [models."…"])')
    models = document.get("models", {})
    if not isinstance(models, dict):
        raise _fail(path, text, "models", "`models` must be a table of model tables")
    return {name: _parse_model(path, text, name, entry) for name, entry in models.items()}


def _parse_model(path: Path, text: str, name: str, entry: Any) -> Price:
    if not isinstance(entry, dict):
        raise _fail(path, text, name, f"model {name!r} must be a table of prices")
    values: dict[str, float] = {}
    for key, value in entry.items():
        if key not in PRICE_FIELDS:
            allowed = ", ".join(sorted(PRICE_FIELDS))
            raise _fail(path, text, key, f"unknown price {key!r} for {name!r} (known: {allowed})")
        # TOML allows `nan` and `inf`, which would poison every cost sum and counter.
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < inf:
            raise _fail(path, text, key, f"price {key!r} of {name!r} must be a number >= 0")
        values[key] = float(value)
    return replace(Price(), **values)


def price_table(path: str | None) -> PriceTable:
    """The built-in table, overridden by `path` when given."""
    table = PriceTable(BUILTIN_PRICES)
    return table.merged(load_pricing(Path(path))) if path else table


def _n(value: int | None) -> int:
    return value or 0


def response_cost(price: Price | None, usage: dict[str, int | None]) -> tuple[float | None, bool]:
    """USD cost of one response's usage and whether the cached split had to be estimated.

    Cached input is part of input and billed at the cached rate; without
    `cached_tokens_details`, the cache is priced as text
    (docs/prices.md#cached-tokens-without-a-breakdown).
    """
    if price is None or all(v is None for v in usage.values()):
        return None, False
    text_in, audio_in, image_in = (
        _n(usage[f"input_{m}_tokens"]) for m in ("text", "audio", "image")
    )
    cached = (
        usage["cached_text_tokens"],
        usage["cached_audio_tokens"],
        usage["cached_image_tokens"],
    )
    estimated = usage["cached_tokens"] is not None and all(c is None for c in cached)
    if estimated:
        cached = (_n(usage["cached_tokens"]), 0, 0)
    cached_text, cached_audio, cached_image = (_n(c) for c in cached)
    terms = [
        (text_in - cached_text, price.text_input),
        (cached_text, price.text_cached_input),
        (audio_in - cached_audio, price.audio_input),
        (cached_audio, price.audio_cached_input),
        (image_in - cached_image, price.image_input),
        (cached_image, price.image_cached_input),
        (_n(usage["output_text_tokens"]), price.text_output),
        (_n(usage["output_audio_tokens"]), price.audio_output),
    ]
    if any(tokens and rate is None for tokens, rate in terms):
        return None, estimated  # tokens of a kind this model has no price for: never guess
    return sum(tokens * (rate or 0.0) for tokens, rate in terms) / 1e6, estimated


def transcription_cost(price: Price | None, usage: dict[str, Any]) -> float | None:
    """USD cost of a transcription: per minute for `duration` usage, else by tokens."""
    if price is None:
        return None
    if usage.get("usage_type") == "duration":
        seconds = usage.get("seconds")
        if seconds is None or price.per_minute is None:
            return None
        return float(seconds) / 60.0 * price.per_minute
    if usage.get("input_tokens") is None and usage.get("output_tokens") is None:
        return None
    audio_in, text_in = usage.get("input_audio_tokens"), usage.get("input_text_tokens")
    if audio_in is None and text_in is None:  # no breakdown: transcription input is audio
        audio_in = usage.get("input_tokens")
    terms = [
        (_n(text_in), price.text_input),
        (_n(audio_in), price.audio_input),
        (_n(usage.get("output_tokens")), price.text_output),
    ]
    if any(tokens and rate is None for tokens, rate in terms):
        return None
    return sum(tokens * (rate or 0.0) for tokens, rate in terms) / 1e6


def seconds_cost(price: Price | None, active_seconds: float, paused_seconds: float) -> float | None:
    """USD cost of a GPT-Live session's billable seconds: active at the session rate, paused at
    the standby rate (docs/prices.md#gpt-live-per-second-billing); None without those prices."""
    if price is None or price.session_per_minute is None:
        return None
    if paused_seconds > 0 and price.standby_per_minute is None:
        return None  # standby time of a model with no standby price: never guess
    standby = price.standby_per_minute or 0.0
    return (active_seconds * price.session_per_minute + paused_seconds * standby) / 60.0
