"""One session's latency waterfall: when each turn reached each milestone, and p50/p95 per phase.

Pure functions over the `responses` rows and the server's `speech_stopped` times; no Streamlit.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from analysis.stats import as_utc, percentile

MILESTONES = ("speech stopped", "response created", "first text", "first audio", "done")
# Each phase: its label, and how to read it off a waterfall row (ms).
PHASES = {
    "speech stopped → response created": ("speech stopped", "response created"),
    "response created → first text": ("response created", "first text"),
    "response created → first audio": ("response created", "first audio"),
    "response created → done (response duration)": ("response created", "done"),
    "speech stopped → first audio (turn latency)": ("speech stopped", "first audio"),
}


def _ms(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (as_utc(end) - as_utc(start)).total_seconds() * 1000


def _plus(base: float | None, ms: Any) -> float | None:
    return None if base is None or ms is None or ms != ms else base + float(ms)


def _stopped_before(stops: Sequence[datetime], created: datetime, after: datetime | None) -> Any:
    """The last `speech_stopped` at or before `created` and after the previous response began."""
    index = bisect.bisect_right(stops, as_utc(created)) - 1
    if index < 0 or (after is not None and stops[index] <= as_utc(after)):
        return None
    return stops[index]


def waterfall(
    responses: Sequence[dict[str, Any]], speech_stops: Sequence[datetime]
) -> list[dict[str, Any]]:
    """Per response (turn N = N-th response): each milestone in ms after the turn began.

    A turn begins at the server's `speech_stopped` when its VAD ended the user's speech, else at
    `response.created`; milestones nobody saw are None.
    """
    stops = sorted(as_utc(ts) for ts in speech_stops)
    rows, previous = [], None
    for number, response in enumerate(responses, start=1):
        created = response.get("created_at")
        stopped = _stopped_before(stops, created, previous) if created is not None else None
        begin = stopped or created
        created_ms = _ms(begin, created)
        rows.append(
            {
                "turn": number,
                "response_id": response["response_id"],
                "status": response.get("status"),
                "speech stopped": 0.0 if stopped is not None else None,
                "response created": created_ms,
                "first text": _plus(created_ms, response.get("time_to_first_text_ms")),
                "first audio": _plus(created_ms, response.get("time_to_first_audio_ms")),
                "done": _ms(begin, response.get("done_at")) if begin is not None else None,
                "voice-to-voice": response.get("voice_to_voice_ms"),
            }
        )
        previous = created or previous
    return rows


def phase_percentiles(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """p50 and p95 (ms) of each phase over the session's turns, with how many turns had it."""
    found = []
    phases = {
        label: [row[end] - row[start] for row in rows if _both(row, start, end)]
        for label, (start, end) in PHASES.items()
    }
    phases["voice-to-voice"] = [
        r["voice-to-voice"] for r in rows if r["voice-to-voice"] is not None
    ]
    for label, values in phases.items():
        found.append(
            {
                "phase": label,
                "turns": len(values),
                "p50_ms": percentile(values, 0.5),
                "p95_ms": percentile(values, 0.95),
            }
        )
    return found


def _both(row: dict[str, Any], start: str, end: str) -> bool:
    return row[start] is not None and row[end] is not None


def segments(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bars of the waterfall chart: each turn's milestones in time order, joined end to start."""
    bars = []
    for row in rows:
        seen = sorted((row[m], m) for m in MILESTONES if row[m] is not None)
        for (start, _), (end, milestone) in itertools.pairwise(seen):
            bars.append({"turn": row["turn"], "to": milestone, "start_ms": start, "end_ms": end})
    return bars
