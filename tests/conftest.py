"""Shared fixtures: real SQLite files, the local fake Realtime server and a real `rtrec proxy`."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from simulator.server import FakeRealtimeServer
from storage.db import make_engine, upgrade

FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"  # copies of shared/reference/fixtures


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'rtrec.db'}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    deadline = time.monotonic() + 30
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
    wait_for_port(port, process, log_path)
    if metrics_port:
        wait_for_port(metrics_port, process, log_path)
    return ProxyProcess(process, port, metrics_port, log_path)


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


@pytest.fixture
def run_proxy(tmp_path: Path) -> Iterator[Callable[..., ProxyProcess]]:
    with proxy_runner(tmp_path) as run:
        yield run


@pytest.fixture
async def fake_server() -> AsyncIterator[FakeRealtimeServer]:
    """The local stand-in for the OpenAI Realtime service, with its own log of every frame."""
    async with FakeRealtimeServer() as server:
        yield server
