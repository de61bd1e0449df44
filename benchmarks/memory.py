"""Scenario 3: resident memory of each relay while one session carries a gigabyte of voice traffic.

The relays run side by side (one session each, same upstream) on fresh processes, after a small
warm-up session; growth is the peak RSS during the big session minus the RSS before it.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks import harness, traffic
from benchmarks.harness import Target
from benchmarks.relays import launch

logger = logging.getLogger(__name__)

SAMPLE_EVERY_S = 0.2
WARMUP_SERVER_FRAMES = 400
TIMEOUT_S = 1800.0


def voice_bytes_per_server_frame() -> float:
    """Wire bytes of the voice mix per server message, the client's appends included."""
    turn = traffic.voice_turn(1)
    server = sum(len(traffic.frame(rest, 0, masked=False)) for rest in turn)
    client = len(traffic.frame(traffic.CLIENT_APPEND, 0, masked=True))
    return (server + client * len(turn) / traffic.SERVER_PER_CLIENT) / len(turn)


@dataclass
class Memory:
    baseline_bytes: int
    peak_bytes: int
    seconds: float
    messages: int
    max_queue_depth: float | None = None  # rtrec: messages waiting for its writer, at most
    dropped: float = 0.0  # rtrec: events not recorded (its drop counter); 0 is the target

    @property
    def growth_mb(self) -> float:
        return (self.peak_bytes - self.baseline_bytes) / 1e6


@dataclass
class _Run:
    target: Target
    process: subprocess.Popen[bytes]
    log: Path
    baseline: int
    peak: int
    expected_events: int
    done_at: float | None = None
    max_queue_depth: float | None = None
    dropped: float = 0.0  # rtrec: events counted as dropped (relay hand-over, recorder queue)


def measure(targets: list[Target], gigabytes: float, workdir: Path) -> dict[str, Memory]:
    """One session of `gigabytes` of voice traffic through every target at once."""
    for target in targets:
        harness.blast(target, "voice", 1, WARMUP_SERVER_FRAMES, workdir)
    server_frames = int(gigabytes * 1e9 / voice_bytes_per_server_frame())
    client_frames = round(server_frames / traffic.SERVER_PER_CLIENT)
    plan = traffic.Plan(
        "blast",
        "voice",
        server_frames=server_frames,
        client_frames=client_frames,
        window=harness.WINDOW,
    )
    per_session = server_frames + client_frames + harness.SETUP_MESSAGES
    runs = []
    started = time.monotonic()
    for target in targets:
        args = [sys.executable, "-m", "benchmarks.loadgen", "--port", str(target.port)]
        args += ["--plan", json.dumps(asdict(plan)), "--api-key", target.api_key]
        process, log = launch(f"memory-{target.name}", args, workdir)
        baseline = target.rss_bytes()
        expected = target.recorded_events() + per_session if target.db_url else 0
        runs.append(_Run(target, process, log, baseline, baseline, expected))
    _follow(runs)
    results = {}
    for run in runs:
        outcome = json.loads(run.log.read_text().strip().splitlines()[-1])
        if "error" in outcome or outcome.get("failed"):
            raise RuntimeError(f"memory run through {run.target.name} failed: {outcome}")
        seconds = (run.done_at or time.monotonic()) - started
        messages = outcome["sent"] + outcome["received"]
        results[run.target.name] = Memory(
            run.baseline, run.peak, seconds, messages, run.max_queue_depth, run.dropped
        )
        logger.info("memory %-9s %s", run.target.name, results[run.target.name])
    return results


def _follow(runs: list[_Run]) -> None:
    """Sample every relay's RSS until its load client is done and (rtrec) all is committed."""
    deadline = time.monotonic() + TIMEOUT_S
    while any(run.done_at is None for run in runs):
        if time.monotonic() > deadline:
            raise RuntimeError("the memory scenario did not finish in time")
        for run in runs:
            if run.done_at is not None:
                continue
            run.peak = max(run.peak, run.target.rss_bytes())
            _sample_queue(run)
            returncode = run.process.poll()
            if returncode is None:
                continue
            # Dropped events are never committed: waiting for them would never end.
            if returncode or run.target.recorded_events() + run.dropped >= run.expected_events:
                run.done_at = time.monotonic()
        time.sleep(SAMPLE_EVERY_S)


def _sample_queue(run: _Run) -> None:
    service = run.target.service
    if service is None or not service.metrics_port:
        return
    values = service.metrics()
    depth = values.get("openai_realtime_recorder_queue_depth", 0.0)
    run.max_queue_depth = max(run.max_queue_depth or 0.0, depth)
    run.dropped = values.get("openai_realtime_recorder_dropped_events_total", 0.0)
