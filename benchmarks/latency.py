"""Scenarios 2 and 4: latency each relay adds at real-time pace, and how many sessions rtrec takes.

Added latency is a percentile of the one-way latency through the relay minus the same percentile
measured straight to the upstream in the same run, both directions pooled.
"""

from __future__ import annotations

import logging
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import harness, traffic
from benchmarks.harness import Paced, Target

logger = logging.getLogger(__name__)

MESSAGES_PER_SESSION_S = 1000 / traffic.CLIENT_APPEND_MS + 1000 / 35  # appends + server events
METRICS_EVERY_S = 1.0  # a scrape costs the proxy CPU: not much more often than Prometheus


@dataclass
class Latency:
    """Every paced run of one target, pooled."""

    runs: list[Paced] = field(default_factory=list)

    def sorted_ns(self) -> list[int]:
        pooled: array[int] = array("q")
        for run in self.runs:
            pooled.extend(run.latencies_ns)
        return sorted(pooled)

    def percentile_ms(self, fraction: float) -> float:
        return harness.percentile(self.sorted_ns(), fraction) / 1e6

    @property
    def cpu_us_per_message(self) -> float:
        return sum(r.cpu_s for r in self.runs) / max(1, sum(r.messages for r in self.runs)) * 1e6


def measure(
    targets: list[Target], sessions: int, duration_s: float, rounds: int, workdir: Path
) -> dict[str, Latency]:
    """Paced runs of `sessions` through every target, `direct` included, rounds alternating."""
    results = {target.name: Latency() for target in targets}
    for round_index in range(rounds):
        shift = round_index % len(targets)
        for target in targets[shift:] + targets[:shift]:
            tag = f"lat-{target.name}-{round_index}"
            run = harness.paced(target, sessions, duration_s, tag, workdir)
            results[target.name].runs.append(run)
            ordered = sorted(run.latencies_ns)
            logger.info(
                "latency %d sessions round %d %-9s p50 %.2f ms p99 %.2f ms (%d samples)",
                sessions,
                round_index + 1,
                target.name,
                harness.percentile(ordered, 0.5) / 1e6,
                harness.percentile(ordered, 0.99) / 1e6,
                len(ordered),
            )
    return results


def added_ms(results: dict[str, Latency], name: str, fraction: float) -> float:
    return results[name].percentile_ms(fraction) - results["direct"].percentile_ms(fraction)


@dataclass
class Step:
    """One session count of the concurrency search."""

    sessions: int
    p99_added_ms: float
    dropped: float
    max_queue_depth: float
    queue_bound: float
    direct_p99_ms: float = 0.0

    @property
    def passed(self) -> bool:
        return (
            self.p99_added_ms <= 5.0
            and self.dropped == 0
            and self.max_queue_depth <= self.queue_bound
        )


class _QueueWatch:
    """Samples rtrec's queue depth from /metrics every second during a run."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.depths: list[float] = []
        self._next = 0.0

    def __call__(self) -> None:
        now = time.monotonic()
        if now >= self._next and self.target.service is not None:
            self._next = now + METRICS_EVERY_S
            metrics = self.target.service.metrics()
            self.depths.append(metrics.get("openai_realtime_recorder_queue_depth", 0.0))


def _step(rtrec: Target, direct: Target, sessions: int, duration_s: float, workdir: Path) -> Step:
    assert rtrec.service is not None
    dropped_name = "openai_realtime_recorder_dropped_events_total"
    dropped_before = rtrec.service.metrics().get(dropped_name, 0.0)
    baseline = harness.paced(direct, sessions, duration_s, f"c-direct-{sessions}", workdir)
    watch = _QueueWatch(rtrec)
    through = harness.paced(rtrec, sessions, duration_s, f"c-rtrec-{sessions}", workdir, watch)
    time.sleep(0.5)  # the last batch's commit
    dropped = rtrec.service.metrics().get(dropped_name, 0.0) - dropped_before
    direct_p99 = harness.percentile(sorted(baseline.latencies_ns), 0.99)
    p99 = harness.percentile(sorted(through.latencies_ns), 0.99) - direct_p99
    # Bounded: the writer keeps up, so the queue never holds more than a second of traffic.
    bound = sessions * MESSAGES_PER_SESSION_S
    depth = max(watch.depths, default=0.0)
    step = Step(sessions, p99 / 1e6, dropped, depth, bound, direct_p99 / 1e6)
    logger.info("concurrency %s", step)
    return step


def max_sessions(
    rtrec: Target,
    direct: Target,
    start: int,
    step: int,
    limit: int,
    duration_s: float,
    workdir: Path,
) -> tuple[int, list[Step]]:
    """The most sessions at which rtrec drops nothing, keeps its queue bounded and adds at most
    5 ms at p99: up from `start` in steps of `step` (halving below `start` when it fails), then
    once halfway between the last count that passed and the first that failed."""
    steps: list[Step] = []

    def passes(sessions: int) -> bool:
        steps.append(_step(rtrec, direct, sessions, duration_s, workdir))
        return steps[-1].passed

    passed, failed = 0, 0
    sessions = start
    while sessions <= limit and passes(sessions):
        passed, sessions = sessions, sessions + step
    failed = sessions if sessions <= limit else 0
    while not passed and sessions >= 20:
        sessions //= 2
        if passes(sessions):
            passed = sessions
        else:
            failed = sessions
    middle = (passed + failed) // 2
    if passed and failed and middle - passed >= 5 and passes(middle):
        passed = middle
    return passed, steps
