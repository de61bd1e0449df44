"""CPU time and resident memory of a process and its children, read from /proc (Linux only)."""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _stat_fields(path: Path) -> list[str] | None:
    """The fields of a /proc stat file after the command name (which may hold spaces)."""
    try:
        text = path.read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    """`pid` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry / "stat")
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, []))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its live children, in seconds."""
    ticks = 0
    for each in descendants(pid):
        fields = _stat_fields(Path(f"/proc/{each}/stat"))
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLOCK_TICKS_PER_S


def cpu_seconds_of_marked(pid: int, marker: bytes) -> float:
    """CPU seconds of `pid` and its live children whose command line holds `marker` (the
    recorder process, `recorder.main`), to tell the relay's CPU from the recorder's."""
    ticks = 0
    for each in descendants(pid):
        try:
            command = Path(f"/proc/{each}/cmdline").read_bytes()
        except OSError:
            continue
        fields = _stat_fields(Path(f"/proc/{each}/stat"))
        if marker in command and fields is not None:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS_PER_S


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU time of each thread of `pid` (thread id -> seconds); the main thread's id is `pid`."""
    result = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = _stat_fields(task / "stat")
        if fields is not None:
            result[int(task.name)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S
    return result


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid` and its live children, in bytes."""
    return _status_bytes(pid, "VmRSS:")


def peak_rss_bytes(pid: int, marker: bytes = b"") -> int:
    """The highest RSS each of `pid` and its live children reached (since `reset_peak_rss`),
    summed; with `marker`, only of those whose command line holds it (the recorder process).
    Sampling RSS misses a peak that lasts a few milliseconds (a buffer joined and sent)."""
    return _status_bytes(pid, "VmHWM:", marker)


def reset_peak_rss(pid: int) -> None:
    """Start `peak_rss_bytes` over from the current RSS of `pid` and its children."""
    for each in descendants(pid):
        try:
            Path(f"/proc/{each}/clear_refs").write_text("5")
        except OSError:
            continue


def _status_bytes(pid: int, field: str, marker: bytes = b"") -> int:
    total = 0
    for each in descendants(pid):
        try:
            if marker and marker not in Path(f"/proc/{each}/cmdline").read_bytes():
                continue
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith(field):
                total += int(line.split()[1]) * 1024
    return total
