"""A real `rtrec proxy` (or `mitmdump -s proxy/addon.py`) subprocess, and what it recorded."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator import LoggedMessage
from tests.pgserver import PostgresServer
from tests.support.net import free_port


def stored_bytes(db_url: str, postgres: PostgresServer | None = None) -> bytes:
    """Every byte the database holds: the SQLite file and its WAL, or a PostgreSQL dump."""
    if db_url.startswith("sqlite:///"):
        database = Path(db_url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert postgres is not None
    return postgres.dump(db_url)


def event_of(message: LoggedMessage) -> dict[str, Any]:
    """A message the fake service logged, as its JSON event (for tests that send only events)."""
    assert message.event is not None, message.data
    return message.event


@dataclass
class ProxyProcess:
    """A real `rtrec proxy` (or `mitmdump -s proxy/addon.py`) subprocess."""

    process: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics_text(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def wait_for_metric(self, sample: str, timeout_s: float = 15.0) -> str:
        """The /metrics text once it holds `sample`: the recorder process counts what the relay
        handed over a moment after the relay relayed it."""
        deadline = time.monotonic() + timeout_s
        while sample not in (text := self.metrics_text()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{sample!r} not in /metrics after {timeout_s} s:\n{text}")
            time.sleep(0.05)
        return text

    def stop(self) -> int:
        """SIGTERM, like a service manager; the recorder flushes before the process exits."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                raise
        return int(self.process.returncode)


def wait_for_port(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60  # two interpreters start: the relay and the recorder
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"proxy exited early:\n{log_path.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"proxy did not listen on {port}:\n{log_path.read_text()}")


def start_proxy(args: list[str], port: int, metrics_port: int, log_path: Path) -> ProxyProcess:
    log_file = log_path.open("wb")
    process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, cwd=log_path.parent)
    log_file.close()
    proxy = ProxyProcess(process, port, metrics_port, log_path)
    try:
        wait_for_port(port, process, log_path)
        if metrics_port:
            wait_for_port(metrics_port, process, log_path)
    except RuntimeError:
        proxy.stop()
        raise
    return proxy


@contextlib.contextmanager
def proxy_runner(log_dir: Path) -> Iterator[Callable[..., ProxyProcess]]:
    """Starts `rtrec proxy --upstream URL --db DB [extra…]` on free ports; all stopped at exit."""
    started: list[ProxyProcess] = []

    def run(upstream: str, db_url: str, *extra: str, verbose: bool = False) -> ProxyProcess:
        port, metrics_port = free_port(), free_port()
        args = [
            sys.executable,
            "-m",
            "rtrec.cli",
            *(["-v"] if verbose else []),
            "proxy",
            "--listen-port",
            str(port),
            "--metrics-port",
            str(metrics_port),
            "--upstream",
            upstream,
            "--db",
            db_url,
            "--flush-interval-ms",
            "20",
            *extra,
        ]
        proxy = start_proxy(args, port, metrics_port, log_dir / f"proxy-{len(started)}.log")
        started.append(proxy)
        return proxy

    try:
        yield run
    finally:
        for proxy in started:
            proxy.stop()
