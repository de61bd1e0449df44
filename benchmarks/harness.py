"""Runs the load client against a target and measures it: rate, CPU per message, RSS, latency."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from array import array
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks import procstat, traffic
from benchmarks.relays import Service, count_events, launch

POLL_S = 0.02
COMMIT_TIMEOUT_S = 120.0
SETUP_MESSAGES = 3  # session.created, the client's session.update, session.updated
RECORDER_MARKER = b"recorder.main"  # in the recorder process's command line
WINDOW = 100  # blast runs: messages in flight per session and direction, at most


@dataclass
class Target:
    """Where the load client connects: relay processes, or the upstream itself (no `pids`)."""

    name: str
    port: int
    api_key: str
    pids: tuple[int, ...] = ()  # whose CPU and memory are measured
    db_url: str = ""  # rtrec: the clock stops when its last event is committed there
    service: Service | None = None  # rtrec: where /metrics is read

    @classmethod
    def of(cls, service: Service, api_key: str) -> Target:
        return cls(service.name, service.port, api_key, (service.pid,), service.db_url, service)

    def cpu_seconds(self) -> float:
        return sum(procstat.cpu_seconds(pid) for pid in self.pids)

    def rss_bytes(self) -> int:
        return sum(procstat.rss_bytes(pid) for pid in self.pids)

    def recorder_cpu_seconds(self) -> float:
        """CPU time of rtrec's recorder process (0 for the other relays)."""
        return sum(procstat.cpu_seconds_of_marked(pid, RECORDER_MARKER) for pid in self.pids)

    def loop_cpu_seconds(self) -> float:
        """CPU time of the relays' main threads: the event loop that relays every frame."""
        return sum(procstat.thread_cpu_seconds(pid).get(pid, 0.0) for pid in self.pids)

    def recorded_events(self) -> int:
        return count_events(self.db_url) if self.db_url else 0


def start_upstream(workdir: Path) -> Service:
    results = workdir / "latency"
    results.mkdir(exist_ok=True)
    args = [sys.executable, "-m", "benchmarks.upstream", "--results", str(results)]
    log = workdir / "upstream.log"
    with log.open("wb") as errors:
        process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=errors,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.strip().isdigit():
        process.kill()
        raise RuntimeError(f"upstream did not start: {log.read_text()[-2000:]}")
    return Service("upstream", process, int(line), log)


def run_load(
    target: Target,
    sessions: int,
    plan: traffic.Plan,
    workdir: Path,
    tick: Callable[[], None] | None = None,
    timeout_s: float = 600.0,
) -> dict[str, Any]:
    """Run the load client to completion, calling `tick` every 20 ms meanwhile."""
    args = [sys.executable, "-m", "benchmarks.loadgen", "--port", str(target.port)]
    args += ["--sessions", str(sessions), "--plan", json.dumps(asdict(plan))]
    args += ["--api-key", target.api_key, "--results", str(workdir / "latency")]
    process, log = launch(f"loadgen-{target.name}", args, workdir)
    deadline = time.monotonic() + timeout_s
    while process.poll() is None:
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError(f"load client against {target.name} timed out")
        if tick is not None:
            tick()
        time.sleep(POLL_S)
    lines = log.read_text(errors="replace").strip().splitlines()
    outcome: dict[str, Any] = json.loads(lines[-1]) if lines else {"error": "no output"}
    if "error" in outcome or outcome.get("failed"):
        raise RuntimeError(f"load against {target.name} failed: {outcome}\n{lines[-20:]}")
    return outcome


@dataclass
class Blast:
    """One timed run of sessions streaming as fast as the target relays."""

    messages: int
    seconds: float
    cpu_s: float
    rss_bytes: int
    loop_cpu_s: float = 0.0
    recorder_cpu_s: float = 0.0
    dropped: float = 0.0  # rtrec: events counted as dropped, not recorded (0: full recording)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def relay_us_per_message(self) -> float:
        """The relay's processes without the recorder's."""
        return (self.cpu_s - self.recorder_cpu_s) / self.messages * 1e6

    @property
    def recorder_us_per_message(self) -> float:
        return self.recorder_cpu_s / self.messages * 1e6

    @property
    def cpu_us_per_message(self) -> float:
        return self.cpu_s / self.messages * 1e6

    @property
    def loop_us_per_message(self) -> float:
        return self.loop_cpu_s / self.messages * 1e6


DROPPED = "openai_realtime_recorder_dropped_events_total"


class _CommitWatch:
    """Polls rtrec's store until `expected` events are committed or counted as dropped (a relay
    that outruns its recorder past the hand-over's bound drops: waiting would never end);
    remembers when, and how many were dropped."""

    def __init__(self, target: Target, expected: int) -> None:
        self.target = target
        self.expected = expected
        self.committed_at: float | None = None if target.db_url else 0.0
        self.dropped_before = self._dropped()
        self.dropped = 0.0

    def _dropped(self) -> float:
        service = self.target.service
        if not self.target.db_url or service is None or not service.metrics_port:
            return 0.0
        return service.metrics().get(DROPPED, 0.0)

    def __call__(self) -> None:
        if self.committed_at is not None:
            return
        recorded = self.target.recorded_events()
        if recorded >= self.expected:
            self.committed_at = time.monotonic()
            return
        dropped = self._dropped() - self.dropped_before
        if dropped and recorded + dropped >= self.expected:
            self.committed_at, self.dropped = time.monotonic(), dropped

    def wait(self) -> float:
        deadline = time.monotonic() + COMMIT_TIMEOUT_S
        while self.committed_at is None:
            if time.monotonic() > deadline:
                raise RuntimeError("rtrec did not commit every event in time")
            time.sleep(POLL_S)
            self()
        return self.committed_at


def blast(target: Target, mix: str, sessions: int, server_frames: int, workdir: Path) -> Blast:
    """Stream `server_frames` (and the mix's share of client frames) per session."""
    client_frames = max(1, round(server_frames / traffic.SERVER_PER_CLIENT))
    plan = traffic.Plan(
        "blast", mix, server_frames=server_frames, client_frames=client_frames, window=WINDOW
    )
    per_session = server_frames + client_frames + SETUP_MESSAGES
    watch = _CommitWatch(target, target.recorded_events() + sessions * per_session)
    cpu_before, loop_before = target.cpu_seconds(), target.loop_cpu_seconds()
    recorder_before = target.recorder_cpu_seconds()
    outcome = run_load(target, sessions, plan, workdir, watch)
    ended = max(outcome["ended"], watch.wait())
    cpu = target.cpu_seconds() - cpu_before
    loop = target.loop_cpu_seconds() - loop_before
    recorder = target.recorder_cpu_seconds() - recorder_before
    messages = outcome["sent"] + outcome["received"]
    seconds = ended - outcome["started"]
    return Blast(messages, seconds, cpu, target.rss_bytes(), loop, recorder, watch.dropped)


@dataclass
class Paced:
    """One run of sessions at real-time pace: one-way latencies of every message, both ways."""

    latencies_ns: array[int]
    messages: int
    cpu_s: float
    rss_bytes: int


def paced(
    target: Target,
    sessions: int,
    duration_s: float,
    tag: str,
    workdir: Path,
    tick: Callable[[], None] | None = None,
) -> Paced:
    plan = traffic.Plan("paced", "voice", duration_s=duration_s, tag=tag)
    cpu_before = target.cpu_seconds()
    outcome = run_load(target, sessions, plan, workdir, tick)
    cpu = target.cpu_seconds() - cpu_before
    rss = target.rss_bytes()
    return Paced(
        _latencies(workdir / "latency", tag, sessions),
        outcome["sent"] + outcome["received"],
        cpu,
        rss,
    )


def _latencies(results: Path, tag: str, sessions: int) -> array[int]:
    """The client's and the upstream's samples of run `tag` (the upstream writes one file per
    session when its connection closes)."""
    deadline = time.monotonic() + 10
    while len(list(results.glob(f"{tag}.*.upstream.bin"))) < sessions:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    samples: array[int] = array("q")
    for path in results.glob(f"{tag}.*"):
        samples.frombytes(path.read_bytes())
        path.unlink()
    return samples


def percentile(sorted_values: list[int] | array[int], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return float(sorted_values[index])
