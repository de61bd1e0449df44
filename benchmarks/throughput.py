"""Scenario 1: messages per second each relay sustains, rounds alternating between relays."""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import harness
from benchmarks.harness import Blast, Target

logger = logging.getLogger(__name__)

CALIBRATION_FRAMES = 250  # server messages per session in the warm-up run that sizes the rounds
MESSAGES_PER_SERVER_FRAME = 1 + 1 / 3.7  # the client's share rides along


@dataclass
class Throughput:
    """Every round of one relay on one traffic mix."""

    runs: list[Blast] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return statistics.median(run.rate for run in self.runs)

    @property
    def cpu_us_per_message(self) -> float:
        return statistics.median(run.cpu_us_per_message for run in self.runs)

    @property
    def dropped(self) -> float:
        """Events rtrec counted as dropped over every round: 0 means full recording."""
        return sum(run.dropped for run in self.runs)

    @property
    def relay_us_per_message(self) -> float:
        return statistics.median(run.relay_us_per_message for run in self.runs)

    @property
    def recorder_us_per_message(self) -> float:
        return statistics.median(run.recorder_us_per_message for run in self.runs)

    @property
    def loop_us_per_message(self) -> float:
        return statistics.median(run.loop_us_per_message for run in self.runs)

    @property
    def rss_bytes(self) -> int:
        return max(run.rss_bytes for run in self.runs)


def frames_for(rate: float, sessions: int, seconds: float) -> int:
    """Server messages per session for a run of about `seconds` at `rate` messages/s."""
    return max(CALIBRATION_FRAMES, int(rate * seconds / sessions / MESSAGES_PER_SERVER_FRAME))


def measure(
    targets: list[Target],
    mixes: tuple[str, ...],
    sessions: int,
    rounds: int,
    round_s: float,
    workdir: Path,
) -> dict[tuple[str, str], Throughput]:
    """Throughput of every target on every mix: a warm-up run each sizes rounds of ~`round_s`,
    then the rounds alternate between targets (the order rotating) so drift hits all alike."""
    results: dict[tuple[str, str], Throughput] = {}
    for mix in mixes:
        frames = {}
        for target in targets:
            warmup = harness.blast(target, mix, sessions, CALIBRATION_FRAMES, workdir)
            frames[target.name] = frames_for(warmup.rate, sessions, round_s)
            results[(target.name, mix)] = Throughput()
        for round_index in range(rounds):
            shift = round_index % len(targets)
            for target in targets[shift:] + targets[:shift]:
                run = harness.blast(target, mix, sessions, frames[target.name], workdir)
                results[(target.name, mix)].runs.append(run)
                logger.info(
                    "throughput %-5s round %d %-9s %8.0f msg/s %6.0f us/msg (relay %.0f, "
                    "%.0f in its loop; recorder %.0f)",
                    mix,
                    round_index + 1,
                    target.name,
                    run.rate,
                    run.cpu_us_per_message,
                    run.relay_us_per_message,
                    run.loop_us_per_message,
                    run.recorder_us_per_message,
                )
    return results
