"""`rtrec sessions` and `rtrec calls` as tables: every value in full, fitted to the terminal."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import IO, Any

from rich import box
from rich.console import Console
from rich.table import Table

# Piped output keeps one session per line (for grep and cut); a terminal gets its own width.
UNBOUNDED_WIDTH = 10_000


def utc(value: datetime) -> datetime:
    """Stored times are UTC; SQLite hands them back without a timezone."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def timestamp(value: datetime | None) -> str:
    return utc(value).isoformat() if value is not None else "-"


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


def call(row: dict[str, Any]) -> str:
    """A sideband's call: its transport (`webrtc`, `sip`) and id; `-` for a session whose
    audio travels on its own WebSocket."""
    if not row.get("call_id"):
        return "-"
    return f"{row.get('transport') or '?'}:{row['call_id']}"


def closed(row: dict[str, Any]) -> str:
    return f"{row['close_code'] or ''} {row['closed_by'] or ''}".strip() or "open"


def sessions_table(rows: Sequence[dict[str, Any]]) -> Table:
    """Newest first, as `browse.list_sessions` returns them; long values fold, never cut."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    # On a narrow terminal long values fold over lines (80 columns fit every column).
    for name, min_width in (("id", 7), ("started", 8), ("length", 6), ("model", 8)):
        table.add_column(name, overflow="fold", min_width=min_width)
    table.add_column("api", no_wrap=True)
    # Only listings holding a call's sideband get the column: 80 columns fit the rest.
    calls = any(row.get("call_id") for row in rows)
    if calls:
        table.add_column("call", overflow="fold", min_width=4)
    for name in ("events", "resp", "tokens", "cost"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("closed", overflow="fold", min_width=6)
    for row in rows:
        table.add_row(
            row["id"],
            timestamp(row["started_at"]),
            duration(row["started_at"], row["ended_at"]),
            row["model"] or "-",
            row["api"],
            *([call(row)] if calls else []),
            f"{row['events']:,}",
            f"{row['responses']:,}",
            f"{row['total_tokens'] or 0:,}",
            cost(row["cost_usd"]),
            closed(row),
        )
    return table


def calls_table(rows: Sequence[dict[str, Any]]) -> Table:
    """Newest first, as `storage.calls.list_calls` returns them; long values fold, never cut."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for name, min_width in (("id", 7), ("started", 8), ("length", 6), ("model", 8)):
        table.add_column(name, overflow="fold", min_width=min_width)
    for name in ("api", "via"):
        table.add_column(name, no_wrap=True)
    table.add_column("status", overflow="fold", min_width=6)
    for name in ("sess", "cost"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        ended = f"{row['status'] or '-'}: {row['end_reason']}" if row["end_reason"] else None
        table.add_row(
            row["id"],
            timestamp(row["created_at"]),
            duration(row["answered_at"] or row["created_at"], row["ended_at"]),
            row["model"] or "-",
            row["api"],
            row["transport"] or "-",
            ended or row["status"] or "-",
            f"{row['sessions']:,}",
            cost(row["cost_usd"]),
        )
    return table


def print_table(table: Table, out: IO[str]) -> None:
    """Fit a terminal (or `COLUMNS`); elsewhere print each row on one line."""
    columns = os.environ.get("COLUMNS", "")
    if out.isatty():
        width = os.get_terminal_size(out.fileno()).columns
    else:
        width = int(columns) if columns.isdigit() else UNBOUNDED_WIDTH
    # Rendered aside and written by us: rich would turn a closed pipe into its own exit status.
    rendered = io.StringIO()
    Console(file=rendered, width=width, highlight=False, color_system=None).print(table)
    for line in rendered.getvalue().splitlines(keepends=True):
        out.write(line)  # line by line: a reader that leaves (`| head`) is noticed at once
