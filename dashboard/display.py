"""How numbers, times and event runs are shown: pure helpers, no Streamlit, no database."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import protocol
from analysis.stats import as_utc
from storage.browse import NORMAL_CLOSE_CODES

UNKNOWN = "—"
# Every ASCII punctuation mark may be backslash-escaped in CommonMark; escaping all of them also
# defuses Streamlit's own `:color[…]`, `:material/…:` and `$…$` directives and GFM autolinks.
MARKDOWN_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def _missing(value: Any) -> bool:
    """None, NaN or NaT (what pandas makes of a NULL)."""
    return value is None or bool(value != value)


def escaped(value: Any) -> str:
    """Recorded text as inert Markdown: a stranger's `[link](…)` or `![image](…)` stays text."""
    text = str(value).replace("\r", "")
    return "".join(f"\\{c}" if c in MARKDOWN_PUNCTUATION else c for c in text).replace("\n", "  \n")


def code(value: Any) -> str:
    """Recorded text as a Markdown code span, fenced by more backticks than it holds in a row."""
    text = " ".join(str(value).split()) or " "
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    # A space on each side keeps a leading or trailing backtick of the text out of the fence.
    padded = f" {text} " if text[0] in "` " or text[-1] in "` " else text
    return f"{fence}{padded}{fence}"


def usd(value: Any) -> str:
    """A cost; `—` when unknown (no price for the model), never a guessed zero."""
    if _missing(value):
        return UNKNOWN
    return f"${value:,.2f}" if value >= 100 else f"${value:,.4f}"


def count(value: Any) -> str:
    return UNKNOWN if _missing(value) else f"{int(value):,}"


def whole(value: Any) -> str:
    """A number rounded to a whole one with separators (ms in a column that says so), or `—`."""
    return UNKNOWN if _missing(value) else f"{round(value):,}"


def millis(value: Any) -> str:
    if _missing(value):
        return UNKNOWN
    return f"{value:,.1f} ms" if value < 10 else f"{value:,.0f} ms"


def timestamp(value: datetime | None) -> str:
    if value is None or _missing(value):
        return UNKNOWN
    return as_utc(value).strftime("%Y-%m-%d %H:%M:%S UTC")


def clock(value: datetime) -> str:
    """`23:29:37.616`: a time of day to the millisecond, for steps within one call."""
    return as_utc(value).strftime("%H:%M:%S.%f")[:-3]


def seconds_between(start: datetime, end: datetime | None) -> float:
    """Seconds from `start` to `end`, or to now for a session still running."""
    stop = datetime.now(UTC) if _missing(end) or end is None else as_utc(end)
    return max((stop - as_utc(start)).total_seconds(), 0.0)


def duration(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.1f} s"
    hours, rest = divmod(whole, 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"


def session_status(session: dict[str, Any]) -> str:
    """`live` while the socket is open, `error` after an abnormal close code, else `closed`."""
    if _missing(session.get("ended_at")):
        return "live"
    code: Any = session.get("close_code")
    if _missing(code) or int(code) in NORMAL_CLOSE_CODES:
        return "closed"
    return "error"


def close_text(session: dict[str, Any]) -> str:
    code: Any = session.get("close_code")
    reason, by = session.get("close_reason"), session.get("closed_by")
    if session_status(session) == "live":
        return "open"
    parts = [str(int(code)) if not _missing(code) else "no code"]
    if reason:
        parts.append(str(reason))
    if by:
        parts.append(f"by {by}")
    return " · ".join(parts)


def token_split(usage: dict[str, Any]) -> str:
    """`in 120 (text 100 · audio 20 · cached 64) → out 9 (text 9 · audio 0)`, `—` when absent."""
    if _missing(usage.get("total_tokens")) and _missing(usage.get("input_tokens")):
        return f"tokens {UNKNOWN}"
    inputs = [
        f"{label} {count(usage.get(key))}"
        for label, key in (("text", "input_text_tokens"), ("audio", "input_audio_tokens"))
    ]
    if not _missing(usage.get("input_image_tokens")) and usage.get("input_image_tokens"):
        inputs.append(f"image {count(usage['input_image_tokens'])}")
    cached = [
        f"{label} {count(usage.get(key))}"
        for label, key in (("text", "cached_text_tokens"), ("audio", "cached_audio_tokens"))
    ]
    outputs = [
        f"{label} {count(usage.get(key))}"
        for label, key in (("text", "output_text_tokens"), ("audio", "output_audio_tokens"))
    ]
    return (
        f"in {count(usage.get('input_tokens'))} ({' · '.join(inputs)}; "
        f"cached {count(usage.get('cached_tokens'))}: {' · '.join(cached)}) → "
        f"out {count(usage.get('output_tokens'))} ({' · '.join(outputs)})"
    )


def collapsible(event_type: str) -> bool:
    return protocol.is_streamed_chunk(event_type)


def collapse_runs(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events with each run of consecutive deltas/audio appends folded into one group row."""
    rows: list[dict[str, Any]] = []
    for event in events:
        if not collapsible(event["type"]):
            rows.append({"group": False, "events": [event]})
        elif rows and rows[-1]["group"]:
            rows[-1]["events"].append(event)
        else:
            rows.append({"group": True, "events": [event]})
    return rows


def run_label(events: Sequence[dict[str, Any]]) -> str:
    """`#12–#40 · 29 deltas: response.output_audio.delta ×15, … · 98,112 B`."""
    kinds: dict[str, int] = {}
    for event in events:
        kinds[event["type"]] = kinds.get(event["type"], 0) + 1
    described = ", ".join(f"{escaped(kind)} ×{n}" for kind, n in kinds.items())
    size = sum(e["size_bytes"] for e in events)
    seqs = (
        f"#{events[0]['seq']}–#{events[-1]['seq']}" if len(events) > 1 else f"#{events[0]['seq']}"
    )
    start = f" · {offset(events[0]['since_start_s'])}" if "since_start_s" in events[0] else ""
    return f"{seqs}{start} · {len(events)} deltas: {described} · {size:,} B"


def relative_times(events: Sequence[dict[str, Any]], started_at: datetime) -> list[dict[str, Any]]:
    """The events with `since_start_s` and `since_previous_s` (None for the first) added."""
    found: list[dict[str, Any]] = []
    start, previous = as_utc(started_at), None
    for event in events:
        ts = as_utc(event["ts"])
        gap = None if previous is None else (ts - previous).total_seconds()
        since_start = (ts - start).total_seconds()
        found.append(event | {"since_start_s": since_start, "since_previous_s": gap})
        previous = ts
    return found


def offset(seconds: float | None) -> str:
    """`+1.234 s`, `+12 ms`: a time relative to another, to the millisecond."""
    if seconds is None:
        return UNKNOWN
    if abs(seconds) < 1:
        return f"{seconds * 1000:+,.0f} ms"
    return f"{seconds:+,.3f} s"


def event_label(event: dict[str, Any]) -> str:
    """`#12 · 10:00:01.234 · +1.234 s · Δ +50 ms · ← server sent · type · 120 B` (escaped)."""
    arrow = "→ client sent" if event["direction"] == "client" else "← server sent"
    ts = as_utc(event["ts"]).strftime("%H:%M:%S.%f")[:-3]
    relative = ""
    if "since_start_s" in event:
        relative = f" · {offset(event['since_start_s'])} · Δ {offset(event['since_previous_s'])}"
    kind = escaped(event["type"])  # a client may send any type: never Markdown
    return f"#{event['seq']} · {ts}{relative} · {arrow} · {kind} · {event['size_bytes']:,} B"
