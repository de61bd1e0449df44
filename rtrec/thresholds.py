"""`rtrec diff --fail-on`: thresholds such as `cost+20%`, `ttfa_p95+200ms`, `tool_calls_changed`.

A numeric threshold trips when session B's value exceeds session A's by more than the allowance
(relative with `%`, in milliseconds with `ms` for latencies, absolute otherwise); `similarity<0.9`
trips when B's text is less similar to A's than that; a flag trips when it is set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from analysis.diff import LATENCIES

FLAGS = (
    "structure_changed",
    "turns_changed",
    "statuses_changed",
    "tool_calls_changed",
    "errors_changed",
    "text_changed",
)
LATENCY_METRICS = tuple(f"{short}_{p}" for short in LATENCIES for p in ("p50", "p95"))
# `billable_seconds`: GPT-Live's billed seconds (absent, so never tripped, for Realtime sessions).
METRICS = (
    "cost",
    "tokens",
    "input_tokens",
    "output_tokens",
    "turns",
    "errors",
    "billable_seconds",
    *LATENCY_METRICS,
)
SIMILARITIES = ("similarity", "transcript_similarity")
_INCREASE = re.compile(r"(?P<metric>[a-z0-9_]+)\+(?P<amount>\d+(?:\.\d+)?)(?P<unit>%|ms)?")
_FLOOR = re.compile(r"(?P<metric>[a-z_]+)<(?P<amount>[01](?:\.\d+)?)")


class ThresholdError(ValueError):
    """A `--fail-on` spec that is not understood; the message names the accepted forms."""


@dataclass(frozen=True)
class Threshold:
    spec: str
    metric: str
    amount: float = 0.0
    unit: str = ""  # "%", "ms", "" (absolute), "<" (similarity floor) or "flag"


def parse(spec: str) -> Threshold:
    text = spec.strip().lower()
    if text in FLAGS:
        return Threshold(spec, text, unit="flag")
    if match := _FLOOR.fullmatch(text):
        if match["metric"] not in SIMILARITIES:
            raise ThresholdError(f"{spec!r}: `<` applies to {', '.join(SIMILARITIES)}")
        return Threshold(spec, match["metric"], float(match["amount"]), "<")
    match = _INCREASE.fullmatch(text)
    if match is None or match["metric"] not in METRICS:
        raise ThresholdError(
            f"{spec!r} is not a threshold: use METRIC+N%, METRIC+N, LATENCY+Nms, "
            f"similarity<0.N or a flag ({', '.join(FLAGS)}); metrics: {', '.join(METRICS)}"
        )
    unit = match["unit"] or ""
    if unit == "ms" and match["metric"] not in LATENCY_METRICS:
        raise ThresholdError(f"{spec!r}: ms applies to latencies ({', '.join(LATENCY_METRICS)})")
    return Threshold(spec, match["metric"], float(match["amount"]), unit)


def _number(value: Any) -> str:
    return "n/a" if value is None else f"{value:g}"


def check(threshold: Threshold, report: dict[str, Any]) -> str | None:
    """Why the threshold trips on `report` (from `analysis.diff.compare`), or None."""
    if threshold.unit == "flag":
        name = threshold.metric
        tripped = not report["structure_equal"] if name == "structure_changed" else report[name]
        return f"{threshold.spec}: {name.replace('_', ' ')}" if tripped else None
    if threshold.unit == "<":
        key = "text_similarity" if threshold.metric == "similarity" else threshold.metric
        value = report[key]
        if value < threshold.amount:
            return f"{threshold.spec}: {key} is {value:g}"
        return None
    before, after = report["metrics"].get(threshold.metric, (None, None))
    if after is None:
        return None  # nothing measured in B: nothing exceeded
    base = before or 0
    if threshold.unit == "%":
        tripped = after > base * (1 + threshold.amount / 100) if base else after > 0
    else:
        tripped = after > base + threshold.amount
    if not tripped:
        return None
    change = f" ({(after - base) / base:+.1%})" if base else ""
    return f"{threshold.spec}: {threshold.metric} {_number(before)} -> {_number(after)}{change}"


def tripped(thresholds: list[Threshold], report: dict[str, Any]) -> list[str]:
    return [reason for t in thresholds if (reason := check(t, report)) is not None]
