"""A one-line progress counter for long commands, shown only on a terminal's stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

Progress = Callable[[int], None]


def progress(what: str, total: int, stream: TextIO | None = None) -> Progress | None:
    """A callback taking the running count, or None when `stream` (stderr) is not a terminal.

    Scripts and pipes get no progress lines; a person watching gets one line, redrawn in place
    and finished with a newline once the count reaches `total`.
    """
    stream = stream or sys.stderr
    if not stream.isatty():
        return None

    def show(done: int) -> None:
        end = "\n" if done >= total else ""
        print(f"\r{what} {done:,} of {total:,}", end=end, file=stream, flush=True)

    return show
