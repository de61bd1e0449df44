"""Every benchmark in one run: `uv run python -m benchmarks.run [--quick] [--memory-gb 1]`.

rtrec (`rtrec proxy --record full`, SQLite in a temporary directory), stock `mitmdump -q` and
LiteLLM's `/v1/realtime` route relay the same traffic from one local upstream, scenario by
scenario, rounds alternating between relays. Prints a table and, last, one line of key=value.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from benchmarks import (
    cli_startup,
    first_paint,
    latency,
    memory,
    pii_bench,
    scaleout,
    throughput,
)
from benchmarks.harness import Target, start_upstream
from benchmarks.relays import (
    CACHE_DIR,
    REPO,
    Service,
    new_master_key,
    start_litellm,
    start_mitmdump,
    start_rtrec,
    start_unrecorded,
)
from benchmarks.report import Results, render
from rtrec.net import free_port
from tests.pgserver import PostgresServer, postgres_bin_dir

logger = logging.getLogger("benchmarks")

SCENARIOS = (
    "throughput",
    "unrecorded",
    "litellm",
    "latency",
    "concurrency",
    "memory",
    "writer",
    "scaleout",
    "dashboard",
    "cli",
    "firstpaint",
    "pii",
)
DASHBOARD_BENCH = Path(__file__).with_name("dashboard_bench.py")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a minute or two")
    parser.add_argument("--memory-gb", type=float, help="traffic of the memory scenario (1)")
    parser.add_argument("--rounds", type=int, help="throughput rounds per relay (3)")
    parser.add_argument("--sessions", type=int, default=8, help="sessions of throughput runs")
    parser.add_argument("--skip", action="append", default=[], choices=SCENARIOS)
    parser.add_argument(
        "--rtrec-src",
        type=Path,
        help="benchmark rtrec from this checkout instead of the installed one",
    )
    parser.add_argument(
        "--compare-src",
        type=Path,
        help="also run rtrec from this checkout (as `rtrec-alt`) to measure a change",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="also measure rtrec --workers N (1: skip)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    args.memory_gb = args.memory_gb or (0.1 if args.quick else 1.0)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.round_s = 1.5 if args.quick else 2.5
    args.paced_s = 3.0 if args.quick else 5.0
    return args


class Run:
    """One benchmark run: its temporary directory, upstream, relays and results."""

    def __init__(self, args: argparse.Namespace, workdir: Path, stack: ExitStack) -> None:
        self.args = args
        self.workdir = workdir
        self.stack = stack
        self.api_key = new_master_key()
        self.upstream = self._keep(start_upstream(workdir))
        self.upstream_url = f"http://127.0.0.1:{self.upstream.port}"
        self.results = Results(relays=[])

    def _keep(self, service: Service) -> Service:
        self.stack.callback(service.stop)
        return service

    def relays(self, tag: str) -> list[Target]:
        """Fresh rtrec, mitmdump and (unless skipped or broken) LiteLLM processes."""
        services = [
            start_rtrec(
                "rtrec",
                self.upstream_url,
                self._sqlite(f"rtrec-{tag}"),
                self.workdir,
                self.args.rtrec_src,
            )
        ]
        if "unrecorded" not in self.args.skip:
            services.append(start_unrecorded(self.upstream_url, self.workdir))
        if self.args.workers > 1:
            db = self._sqlite(f"workers-{tag}")
            services.append(
                start_rtrec(
                    f"rtrec-w{self.args.workers}",
                    self.upstream_url,
                    db,
                    self.workdir,
                    self.args.rtrec_src,
                    workers=self.args.workers,
                )
            )
        if self.args.compare_src:
            db = self._sqlite(f"alt-{tag}")
            services.append(
                start_rtrec("rtrec-alt", self.upstream_url, db, self.workdir, self.args.compare_src)
            )
        services.append(start_mitmdump(self.upstream_url, self.workdir))
        if "litellm" not in self.args.skip:
            try:
                services.append(start_litellm(self.upstream_url, self.workdir, self.api_key))
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                self._note(f"LiteLLM not measured: {str(exc).splitlines()[0]}")
                self.args.skip.append("litellm")
        for service in services:
            self._keep(service)
        if not self.results.relays:
            self.results.relays = [s.name for s in services]
        return [Target.of(service, self.api_key) for service in services]

    def _sqlite(self, name: str) -> str:
        return f"sqlite:///{self.workdir / name}.db"

    def _note(self, text: str) -> None:
        logger.warning("%s", text)
        self.results.notes.append(text)

    @property
    def direct(self) -> Target:
        return Target("direct", self.upstream.port, self.api_key)

    def relay_scenarios(self) -> None:
        """Throughput, latency and concurrency on one set of relay processes."""
        args = self.args
        if {"throughput", "latency", "concurrency"} <= set(args.skip):
            return
        targets = self.relays("main")
        if "throughput" not in args.skip:
            with _phase("throughput"):
                self.results.throughput = throughput.measure(
                    targets,
                    ("voice", "small"),
                    args.sessions,
                    args.rounds,
                    args.round_s,
                    self.workdir,
                )
        if "latency" not in args.skip:
            with _phase("latency"):
                rounds = 1 if args.quick else 2
                self.results.latency = latency.measure(
                    [self.direct, *targets], 50, args.paced_s, rounds, self.workdir
                )
                self.results.latency_sessions = 50
        if "concurrency" not in args.skip:
            with _phase("concurrency"):
                found, steps = latency.max_sessions(
                    targets[0], self.direct, 100, 100, 1000, args.paced_s, self.workdir
                )
                self.results.max_sessions, self.results.concurrency_steps = found, steps
        for target in targets:
            assert target.service is not None
            target.service.stop()

    def memory_scenario(self) -> None:
        with _phase("memory"):
            targets = self.relays("memory")
            self.results.memory = memory.measure(targets, self.args.memory_gb, self.workdir)
            self.results.memory_gb = self.args.memory_gb
            for target in targets:
                assert target.service is not None
                target.service.stop()

    def pii_scenario(self) -> None:
        """`--redact-pii`: the recorder's cost per event, with and without, as notes."""
        for mix, cost in pii_bench.measure(2_000 if self.args.quick else 20_000).items():
            self._note(
                f"--redact-pii, {mix} mix: {cost['on_us']} µs per event in the recorder "
                f"({cost['off_us']} µs without, ×{cost['ratio']})"
            )

    def storage_scenarios(self) -> None:
        """The writer on SQLite and PostgreSQL, then the scale-out on PostgreSQL."""
        postgres: PostgresServer | None = None
        if {"writer", "scaleout"} <= set(self.args.skip):
            return
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            self._note("PostgreSQL not measured: no server binaries (apt-get install postgresql)")
        else:
            postgres = PostgresServer(bin_dir, free_port())
            postgres.start()
            self.stack.callback(postgres.cleanup)
        if "writer" not in self.args.skip:
            with _phase("writer"):
                self._writer(postgres)
        if "scaleout" not in self.args.skip and postgres is not None:
            reason = scaleout.haproxy_missing()
            if reason:
                self._note(f"scale-out not measured: {reason}")
                return
            with _phase("scale-out"):
                self.results.scaleout = scaleout.measure(
                    self.upstream_url,
                    postgres.create_database(),
                    self.api_key,
                    self.args.sessions,
                    2 if self.args.quick else 4,
                    self.args.round_s,
                    self.workdir,
                    self.args.rtrec_src,
                )

    def _writer(self, postgres: PostgresServer | None) -> None:
        messages = {"voice": 12_000 if self.args.quick else 40_000}
        messages["small"] = messages["voice"] * 2
        for mix, count in messages.items():
            urls = {"sqlite": self._sqlite(f"writer-{mix}")}
            if postgres is not None:
                urls["postgresql"] = postgres.create_database()
            for kind, url in urls.items():
                self.results.writer[f"{kind} {mix}"] = _writer_bench(
                    url, mix, count, self.args.rtrec_src
                )

    def dashboard(self) -> None:
        if not DASHBOARD_BENCH.exists():
            return
        with _phase("dashboard"):
            self.results.dashboard = _dashboard_bench(CACHE_DIR / "dashboard-bench.db")

    def cli(self) -> None:
        with _phase("cli start-up"):
            self.results.cli = cli_startup.measure(self.workdir, 3 if self.args.quick else 10)

    def first_paint(self) -> None:
        """`rtrec up`'s banner to the dashboard's first page in headless Chromium."""
        with _phase("dashboard first paint"):
            rounds = 2 if self.args.quick else 5
            self.results.first_paint = first_paint.measure(self.workdir, rounds)


def _writer_bench(url: str, mix: str, messages: int, source: Path | None) -> dict[str, float]:
    args = [sys.executable, "-m", "benchmarks.writer_bench", "--db", url, "--mix", mix]
    args += ["--messages", str(messages)]
    env = {**os.environ, "PYTHONPATH": f"{source}{os.pathsep}{REPO}"} if source else None
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=900, check=True, env=env, cwd=REPO
    )
    outcome: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    logger.info("writer %s %s: %.0f events/s", url.split(":")[0], mix, outcome["events_per_s"])
    return outcome


def _dashboard_bench(db_path: Path) -> list[str]:
    """Run the dashboard benchmark if someone wrote it; keep its timing lines."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            [sys.executable, str(DASHBOARD_BENCH), str(db_path)],
            capture_output=True,
            text=True,
            timeout=1800,
            cwd=REPO,
        )
    except subprocess.TimeoutExpired:
        return ["n/a (dashboard_bench.py timed out)"]
    lines = [line for line in done.stdout.splitlines() if re.search(r"\d ms", line)]
    if not lines:
        problems = [line for line in done.stderr.splitlines() if "Error" in line] or ["no output"]
        return [f"n/a (dashboard_bench.py exited {done.returncode}: {problems[-1][:200]})"]
    if done.returncode:  # it exits 1 when a page is over its own target
        lines.append(f"(dashboard_bench.py exited {done.returncode}: a page is over its target)")
    return lines


@contextmanager
def _phase(name: str) -> Iterator[None]:
    started = time.monotonic()
    logger.info("== %s", name)
    yield
    logger.info("== %s done in %.0f s", name, time.monotonic() - started)


def _attempt(run: Run, name: str, scenario: Callable[[], None]) -> bool:
    """Run one group of scenarios; a failure is noted and the others still run."""
    try:
        scenario()
    except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as exc:
        logger.exception("%s failed", name)
        run.results.notes.append(f"{name} failed: {str(exc).splitlines()[0][:300]}")
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="rtrec-bench-"))
    try:
        with ExitStack() as stack:
            run = Run(args, workdir, stack)
            ok = _attempt(run, "relay scenarios", run.relay_scenarios)
            if "memory" not in args.skip:
                ok &= _attempt(run, "memory", run.memory_scenario)
            ok &= _attempt(run, "storage scenarios", run.storage_scenarios)
            if "cli" not in args.skip:
                ok &= _attempt(run, "cli start-up", run.cli)
            if "firstpaint" not in args.skip:
                ok &= _attempt(run, "dashboard first paint", run.first_paint)
            if "pii" not in args.skip:
                ok &= _attempt(run, "pii", run.pii_scenario)
        run.results.seconds = time.monotonic() - started
        if "dashboard" not in args.skip:
            ok &= _attempt(run, "dashboard", run.dashboard)
    finally:
        if args.keep:
            logger.info("kept %s", workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(render(run.results))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
