"""`rtrec sessions` and `rtrec calls` as tables: every value in full when it fits, otherwise ids
shortened to a prefix every command takes and times to the second, fitted to the terminal."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import IO, Any

from rich import box
from rich.console import Console
from rich.table import Table

# Piped output keeps one session per line (for grep and cut); a terminal gets its own width.
UNBOUNDED_WIDTH = 10_000
# A shortened id keeps at least this much: a UUIDv7's millisecond clock plus its dash, so ids of
# sessions started apart stay apart (git shortens commit hashes the same way).
SHORT_ID = 13


def utc(value: datetime) -> datetime:
    """Stored times are UTC; SQLite hands them back without a timezone."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def timestamp(value: datetime | None) -> str:
    return utc(value).isoformat() if value is not None else "-"


def short_ids(ids: Sequence[str], least: int = SHORT_ID) -> dict[str, str]:
    """Each id cut to the shortest prefix (of at least `least` characters) no other id shares."""
    ordered = sorted(set(ids))
    shortest: dict[str, str] = {}
    for index, value in enumerate(ordered):
        length = least
        for neighbour in ordered[max(index - 1, 0) : index + 2]:
            if neighbour != value:
                length = max(length, _common_prefix(value, neighbour) + 1)
        shortest[value] = value[:length]
    return shortest


def _common_prefix(one: str, other: str) -> int:
    return next((n for n, (a, b) in enumerate(zip(one, other, strict=False)) if a != b), len(one))


def duration(started_at: datetime, ended_at: datetime | None) -> str:
    """`12.3s`, `4m05s` or `2h07m`; `-` while the session is open."""
    if ended_at is None:
        return "-"
    seconds = max((utc(ended_at) - utc(started_at)).total_seconds(), 0.0)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, second = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{second:02d}s"
    hours, minute = divmod(minutes, 60)
    return f"{hours}h{minute:02d}m"


def cost(cost_usd: float | None) -> str:
    """Dollars to a hundredth of a cent, which is what one short turn costs."""
    return "-" if cost_usd is None else f"${cost_usd:,.4f}"


def call(row: dict[str, Any], name: dict[str, str] | None = None) -> str:
    """A sideband's call: its transport (`webrtc`, `sip`) and id (shortened by `name`); `-` for a
    session whose audio travels on its own WebSocket."""
    if not row.get("call_id"):
        return "-"
    call_id = row["call_id"] if name is None else name[row["call_id"]]
    return f"{row.get('transport') or '?'}:{call_id}"


def closed(row: dict[str, Any]) -> str:
    return f"{row['close_code'] or ''} {row['closed_by'] or ''}".strip() or "open"


def sessions_table(rows: Sequence[dict[str, Any]], short: bool = False) -> Table:
    """Newest first, as `browse.list_sessions` returns them; long values fold, never cut. `short`
    fits 80 columns: ids as unique prefixes, times to the minute, no `api`, `call` or `resp`."""
    ids = _names([row["id"] for row in rows], short)
    table = _table(short)
    calls = not short and any(row.get("call_id") for row in rows)
    extra = [] if short else ["resp"]
    for name in ([] if short else ["api"]) + (["call"] if calls else []):
        table.add_column(name, overflow="fold", min_width=4)
    for name in ("events", *extra, "tokens", "cost"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("closed", no_wrap=short, overflow="fold", min_width=6)
    for row in rows:
        table.add_row(
            *_lead_cells(ids[row["id"]], row["started_at"], row["ended_at"], row, short),
            *([] if short else [row["api"]]),
            *([call(row)] if calls else []),
            f"{row['events']:,}",
            *([] if short else [f"{row['responses']:,}"]),
            f"{row['total_tokens'] or 0:,}",
            cost(row["cost_usd"]),
            closed(row),
        )
    return table


def calls_table(rows: Sequence[dict[str, Any]], short: bool = False) -> Table:
    """Newest first, as `storage.calls.list_calls` returns them; long values fold, never cut.
    `short` fits 80 columns: ids as unique prefixes, times to the minute."""
    ids = _names([row["id"] for row in rows], short)
    table = _table(short)
    for name in ("api", "via"):
        table.add_column(name, no_wrap=True)
    table.add_column("status", overflow="fold", min_width=6)
    for name in ("sess", "cost"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        ended = f"{row['status'] or '-'}: {row['end_reason']}" if row["end_reason"] else None
        start = row["answered_at"] or row["created_at"]
        table.add_row(
            *_lead_cells(ids[row["id"]], row["created_at"], row["ended_at"], row, short, start),
            row["api"],
            row["transport"] or "-",
            ended or row["status"] or "-",
            f"{row['sessions']:,}",
            cost(row["cost_usd"]),
        )
    return table


def _table(short: bool) -> Table:
    """id, started, length and model: a shortened id stays whole (it is there to be copied), a
    full one folds; a short table has one space between columns and cuts long models with `…`."""
    table = Table(
        box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 0 if short else 1, 0, 0)
    )
    table.add_column("id", no_wrap=short, overflow="fold", min_width=7)
    table.add_column("started", no_wrap=short, overflow="fold", min_width=10)
    table.add_column("length", overflow="fold", min_width=6)
    table.add_column("model", overflow="ellipsis" if short else "fold", min_width=8)
    return table


def _lead_cells(
    name: str,
    started: datetime,
    ended: datetime | None,
    row: dict[str, Any],
    short: bool,
    counted_from: datetime | None = None,
) -> tuple[str, str, str, str]:
    when = utc(started).strftime("%m-%d %H:%M") if short else timestamp(started)
    return name, when, duration(counted_from or started, ended), row["model"] or "-"


def _names(ids: Sequence[str], short: bool) -> dict[str, str]:
    return short_ids(ids) if short else {value: value for value in ids}


def print_table(table: Callable[[bool], Table], out: IO[str]) -> None:
    """Fit a terminal (or `COLUMNS`): values in full if they fit, else shortened (`table(True)`);
    elsewhere print each row in full on one line."""
    columns = os.environ.get("COLUMNS", "")
    if out.isatty():
        width = os.get_terminal_size(out.fileno()).columns
    else:
        width = int(columns) if columns.isdigit() else UNBOUNDED_WIDTH
    rendered = _render(table(False), UNBOUNDED_WIDTH)
    if max(map(len, rendered.splitlines()), default=0) > width:
        rendered = _render(table(True), width)
    for line in rendered.splitlines(keepends=True):
        out.write(line)  # line by line: a reader that leaves (`| head`) is noticed at once


def _render(table: Table, width: int) -> str:
    # Rendered aside and written by us: rich would turn a closed pipe into its own exit status.
    rendered = io.StringIO()
    Console(file=rendered, width=width, highlight=False, color_system=None).print(table)
    return rendered.getvalue()
