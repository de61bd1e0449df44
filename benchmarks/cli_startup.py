"""How long `rtrec --help` and `rtrec sessions` take, start to exit, as a user runs them.

Repeated runs of a fresh process each (as hyperfine does), after one warm-up run so the page
cache holds the interpreter and the libraries: the numbers are start-up, not disk. Python writes
its bytecode cache on the warm-up run as on any user's machine (and the Docker image ships it),
even where the environment says PYTHONDONTWRITEBYTECODE: compiling SQLAlchemy from source on every
run would triple the numbers. CPU time (user + system) is given beside the wall time: on a shared,
loaded machine it is the steadier number.
Run alone: `uv run python -m benchmarks.cli_startup [--runs N]`.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# The targets of issue 24: what a command costs before it does anything.
TARGETS_S = {"rtrec --help": 0.5, "rtrec sessions": 1.0}


@dataclass(frozen=True)
class Timing:
    command: str
    runs: int
    mean_s: float
    min_s: float
    max_s: float
    cpu_s: float  # user + system of one run: steadier than wall time on a shared machine

    def line(self) -> str:
        target = TARGETS_S.get(self.command)
        verdict = ""
        if target is not None:
            wall, cpu = (("ok" if s <= target else "OVER") for s in (self.mean_s, self.cpu_s))
            verdict = f" (target <= {target:g} s: wall {wall}, CPU {cpu})"
        return (
            f"{self.command}: mean {self.mean_s:.3f} s, min {self.min_s:.3f} s, "
            f"max {self.max_s:.3f} s, CPU {self.cpu_s:.3f} s over {self.runs} runs{verdict}"
        )


def rtrec_command() -> list[str]:
    """The installed `rtrec` script of this environment, as a user's shell would run it."""
    script = Path(sys.executable).with_name("rtrec")
    return [str(script)] if script.exists() else [sys.executable, "-m", "rtrec.cli"]


def user_env() -> dict[str, str]:
    """Our environment as a user's shell has it: Python may cache bytecode."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def time_command(name: str, argv: list[str], runs: int) -> Timing:
    env = user_env()
    subprocess.run(argv, capture_output=True, check=True, timeout=120, env=env)  # the warm-up
    seconds = []
    cpu_before = _children_cpu_s()
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, timeout=120, env=env)
        seconds.append(time.perf_counter() - started)
    cpu_s = (_children_cpu_s() - cpu_before) / runs
    return Timing(name, runs, statistics.fmean(seconds), min(seconds), max(seconds), cpu_s)


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(workdir: Path, runs: int = 10) -> list[Timing]:
    """`--help`, then `sessions` on a database the demo recorded into `workdir`."""
    rtrec = rtrec_command()
    db = workdir / "cli-demo.db"
    subprocess.run(
        [*rtrec, "demo", "--exit", "--fast", "--db", str(db)],
        capture_output=True,
        check=True,
        timeout=600,
    )
    return [
        time_command("rtrec --help", [*rtrec, "--help"], runs),
        time_command("rtrec sessions", [*rtrec, "sessions", "--db", str(db)], runs),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cli_startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rtrec-cli-bench-") as workdir:
        timings = measure(Path(workdir), args.runs)
    for timing in timings:
        print(timing.line())
    return 0 if all(t.mean_s <= TARGETS_S.get(t.command, t.mean_s) for t in timings) else 1


if __name__ == "__main__":
    sys.exit(main())
