"""Scenario 3: resident memory of each relay while one session carries a gigabyte of voice traffic.

The relays run side by side (one session each, same upstream) on fresh processes, after a small
warm-up session; growth is the peak RSS during the big session minus the RSS before it, summed
over the relay's processes: each process's own peak (the kernel's high-water mark, reset at the
start), so a peak between two samples counts and peaks at different moments add up. rtrec's
recorder process is also reported on its own, to tell the relay's hand-over buffer from the
recorder's queue.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks import harness, procstat, traffic
from benchmarks.harness import RECORDER_MARKER, Target
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
    recorder_baseline_bytes: int = 0  # rtrec: its recorder process alone (in the sums above)
    recorder_peak_bytes: int = 0

    @property
    def growth_mb(self) -> float:
        return (self.peak_bytes - self.baseline_bytes) / 1e6

    @property
    def recorder_growth_mb(self) -> float:
        return (self.recorder_peak_bytes - self.recorder_baseline_bytes) / 1e6


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
    recorder_baseline: int = 0
    recorder_peak: int = 0


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
        for pid in target.pids:
            procstat.reset_peak_rss(pid)
        baseline, recorder = target.rss_bytes(), _recorder_peak(target)
        expected = target.recorded_events() + per_session if target.db_url else 0
        run = _Run(target, process, log, baseline, baseline, expected)
        run.recorder_baseline = run.recorder_peak = recorder
        runs.append(run)
    _follow(runs)
    results = {}
    for run in runs:
        outcome = json.loads(run.log.read_text().strip().splitlines()[-1])
        if "error" in outcome or outcome.get("failed"):
            raise RuntimeError(f"memory run through {run.target.name} failed: {outcome}")
        seconds = (run.done_at or time.monotonic()) - started
        messages = outcome["sent"] + outcome["received"]
        results[run.target.name] = Memory(
            run.baseline,
            run.peak,
            seconds,
            messages,
            run.max_queue_depth,
            run.dropped,
            run.recorder_baseline,
            run.recorder_peak,
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
            run.peak = max(run.peak, sum(procstat.peak_rss_bytes(pid) for pid in run.target.pids))
            run.recorder_peak = max(run.recorder_peak, _recorder_peak(run.target))
            _sample_queue(run)
            returncode = run.process.poll()
            if returncode is None:
                continue
            # Dropped events are never committed: waiting for them would never end.
            if returncode or run.target.recorded_events() + run.dropped >= run.expected_events:
                run.done_at = time.monotonic()
        time.sleep(SAMPLE_EVERY_S)


def _recorder_peak(target: Target) -> int:
    """The peak RSS of rtrec's recorder process (0 for the other relays)."""
    return sum(procstat.peak_rss_bytes(pid, RECORDER_MARKER) for pid in target.pids)


def _sample_queue(run: _Run) -> None:
    service = run.target.service
    if service is None or not service.metrics_port:
        return
    values = service.metrics()
    depth = values.get("openai_realtime_recorder_queue_depth", 0.0)
    run.max_queue_depth = max(run.max_queue_depth or 0.0, depth)
    run.dropped = values.get("openai_realtime_recorder_dropped_events_total", 0.0)
