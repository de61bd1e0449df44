"""Scenario 7: one vs two rtrec processes behind HAProxy (TCP mode), sharing one PostgreSQL.

Both set-ups go through HAProxy so that only the number of rtrec processes differs; the clock of
each run stops when PostgreSQL holds every event.
"""

from __future__ import annotations

import logging
import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path

from benchmarks import harness
from benchmarks.harness import Target
from benchmarks.relays import Service, start_haproxy, start_rtrec
from benchmarks.throughput import CALIBRATION_FRAMES, frames_for

logger = logging.getLogger(__name__)

HAPROXY = "/usr/sbin/haproxy"


@dataclass
class ScaleOut:
    one_rate: float
    two_rate: float
    one_cpu_us: float
    two_cpu_us: float

    @property
    def ratio(self) -> float:
        return self.two_rate / self.one_rate


def haproxy_missing() -> str | None:
    """Why the scenario cannot run here, if it cannot."""
    if shutil.which("haproxy") is None and not Path(HAPROXY).exists():
        return "haproxy not installed (apt-get install -y haproxy)"
    return None


def measure(
    upstream: str,
    db_url: str,
    api_key: str,
    sessions: int,
    rounds: int,
    round_s: float,
    workdir: Path,
    source: Path | None = None,
) -> ScaleOut:
    services: list[Service] = []
    try:
        first = start_rtrec("rtrec-pg1", upstream, db_url, workdir, source)
        services.append(first)
        second = start_rtrec("rtrec-pg2", upstream, db_url, workdir, source)
        services.append(second)
        one = start_haproxy([first], workdir)
        services.append(one)
        two = start_haproxy([first, second], workdir)
        services.append(two)
        targets = [
            Target("1 rtrec", one.port, api_key, (first.pid,), db_url),
            Target("2 rtrec", two.port, api_key, (first.pid, second.pid), db_url),
        ]
        runs = _rounds(targets, sessions, rounds, round_s, workdir)
    finally:
        for service in reversed(services):
            service.extra = []
            service.stop()
    return ScaleOut(
        statistics.median(r.rate for r in runs[0]),
        statistics.median(r.rate for r in runs[1]),
        statistics.median(r.cpu_us_per_message for r in runs[0]),
        statistics.median(r.cpu_us_per_message for r in runs[1]),
    )


def _rounds(
    targets: list[Target], sessions: int, rounds: int, round_s: float, workdir: Path
) -> list[list[harness.Blast]]:
    frames = {}
    for target in targets:
        warmup = harness.blast(target, "voice", sessions, CALIBRATION_FRAMES, workdir)
        frames[target.name] = frames_for(warmup.rate, sessions, round_s)
    runs: list[list[harness.Blast]] = [[] for _ in targets]
    for round_index in range(rounds):
        for index in (0, 1) if round_index % 2 == 0 else (1, 0):
            target = targets[index]
            run = harness.blast(target, "voice", sessions, frames[target.name], workdir)
            runs[index].append(run)
            logger.info("scale-out %s: %.0f msg/s", target.name, run.rate)
    return runs
