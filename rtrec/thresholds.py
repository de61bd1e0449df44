"""`rtrec diff --fail-on`: thresholds such as `cost+20%`, `output_tokens±20%`, `audio_ms-30%`,
`ttfa_p95+200ms`, `model_changed`.

A numeric threshold compares session B's value with session A's: `+` trips when B exceeds A by
more than the allowance, `-` when B falls short of A by more, `±` (or `+-`) either way. The
allowance is relative with `%`, in milliseconds with `ms` for latencies, absolute otherwise.
`audio_ms` is checked turn by turn. `similarity<0.9` trips when B's text is less similar to
A's than that; a flag trips when it is set. A cost threshold trips when either cost is unknown
(usage without a price) unless that is allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from analysis.diff import LATENCIES, TOKEN_KINDS

FLAGS = (
    "structure_changed",
    "model_changed",
    "modalities_changed",
    "turns_changed",
    "statuses_changed",
    "tool_calls_changed",
    "errors_changed",
    "text_changed",
    "close_changed",
)
LATENCY_METRICS = tuple(f"{short}_{p}" for short in LATENCIES for p in ("p50", "p95"))
TOKEN_METRICS = tuple("tokens" if kind == "total_tokens" else kind for kind in TOKEN_KINDS)
METRICS = (
    "cost",
    *TOKEN_METRICS,
    "audio_ms",
    "billable_seconds",
    "turns",
    "errors",
    *LATENCY_METRICS,
)
SIMILARITIES = ("similarity", "transcript_similarity")
_CHANGE = re.compile(
    r"(?P<metric>[a-z0-9_]+)(?P<sign>\+-|±|\+|-)(?P<amount>\d+(?:\.\d+)?)(?P<unit>%|ms)?"
)
_FLOOR = re.compile(r"(?P<metric>[a-z_]+)<(?P<amount>[01](?:\.\d+)?)")


class ThresholdError(ValueError):
    """A `--fail-on` spec that is not understood; the message names the accepted forms."""


@dataclass(frozen=True)
class Threshold:
    spec: str
    metric: str
    amount: float = 0.0
    unit: str = ""  # "%", "ms", "" (absolute), "<" (similarity floor) or "flag"
    sign: str = "+"  # "+" (a rise trips), "-" (a drop trips) or "±" (either)


def parse(spec: str) -> Threshold:
    text = spec.strip().lower()
    if text in FLAGS:
        return Threshold(spec, text, unit="flag")
    if match := _FLOOR.fullmatch(text):
        if match["metric"] not in SIMILARITIES:
            raise ThresholdError(f"{spec!r}: `<` applies to {', '.join(SIMILARITIES)}")
        return Threshold(spec, match["metric"], float(match["amount"]), "<")
    match = _CHANGE.fullmatch(text)
    if match is None or match["metric"] not in METRICS:
        raise ThresholdError(
            f"{spec!r} is not a threshold: use METRIC+N%, METRIC-N%, METRIC±N% (or +-), "
            f"METRIC+N, LATENCY+Nms, similarity<0.N or a flag ({', '.join(FLAGS)}); "
            f"metrics: {', '.join(METRICS)}"
        )
    unit = match["unit"] or ""
    if unit == "ms" and match["metric"] not in (*LATENCY_METRICS, "audio_ms"):
        raise ThresholdError(f"{spec!r}: ms applies to latencies ({', '.join(LATENCY_METRICS)})")
    sign = "±" if match["sign"] in ("±", "+-") else match["sign"]
    return Threshold(spec, match["metric"], float(match["amount"]), unit, sign)


def _number(value: Any) -> str:
    return "unknown" if value is None else f"{value:g}"


def _moved(threshold: Threshold, before: float, after: float) -> bool:
    """Whether `after` left the allowed band around `before` on the threshold's side(s)."""
    allowance = before * threshold.amount / 100 if threshold.unit == "%" else threshold.amount
    rose = after > before + allowance if (before or threshold.unit != "%") else after > 0
    fell = after < before - allowance
    return (threshold.sign != "-" and rose) or (threshold.sign != "+" and fell)


def _reason(threshold: Threshold, name: str, before: Any, after: Any) -> str:
    change = f" ({(after - before) / before:+.1%})" if before else ""
    return f"{threshold.spec}: {name} {_number(before)} -> {_number(after)}{change}"


def _check_turns(threshold: Threshold, report: dict[str, Any]) -> str | None:
    """`audio_ms` per paired turn: the first turn whose audio moved past the allowance."""
    for turn in report["turns"]:
        before, after = turn["audio_ms"]
        if before is not None and after is not None and _moved(threshold, before, after):
            return _reason(threshold, f"turn {turn['turn']} audio_ms", before, after)
    return None


def check(
    threshold: Threshold, report: dict[str, Any], allow_unknown_cost: bool = False
) -> str | None:
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
    if threshold.metric == "audio_ms":
        return _check_turns(threshold, report)
    before, after = report["metrics"].get(threshold.metric, (None, None))
    if threshold.metric == "cost" and any(report["cost_unknown"]) and not allow_unknown_cost:
        side = " and ".join(s for s, u in zip("AB", report["cost_unknown"], strict=True) if u)
        return f"{threshold.spec}: cost of {side} unknown (usage without a price)"
    if before is None or after is None:
        return None  # not measured on one side: nothing to compare
    if not _moved(threshold, before, after):
        return None
    return _reason(threshold, threshold.metric, before, after)


def tripped(
    thresholds: list[Threshold], report: dict[str, Any], allow_unknown_cost: bool = False
) -> list[str]:
    return [
        reason for t in thresholds if (reason := check(t, report, allow_unknown_cost)) is not None
    ]
