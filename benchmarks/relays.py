"""Starting and stopping what the benchmarks measure: rtrec, stock mitmdump, LiteLLM, HAProxy.

Every process listens on 127.0.0.1 only, logs into the run's temporary directory and is stopped
by its own process id (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from benchmarks import procstat
from rtrec.net import free_port

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rtrec-bench"
LITELLM_VENV = CACHE_DIR / "litellm-venv"
HAPROXY_TEMPLATE = Path(__file__).with_name("haproxy.cfg")
START_TIMEOUT_S = 60.0
LITELLM_START_TIMEOUT_S = 180.0


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{log.stem} exited with {process.returncode}:\n{tail}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{log.stem} did not listen on port {port} within {timeout_s:.0f} s")


@dataclass
class Service:
    """A process this run started, and the port clients connect to."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    metrics_port: int = 0
    db_url: str = ""
    extra: list[Service] = field(default_factory=list)  # processes behind a load balancer

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout_s: float = 60.0) -> None:
        """SIGTERM this process (rtrec flushes its queue), SIGKILL what is left after a while."""
        pids = procstat.descendants(self.pid) if self.process.poll() is None else []
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in pids[1:]:  # children the process did not take down with it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for service in self.extra:
            service.stop(timeout_s)

    def metrics(self) -> dict[str, float]:
        """rtrec's Prometheus samples, summed over label sets (name -> value)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                base = name.partition("{")[0]
                values[base] = values.get(base, 0.0) + float(value)
        return values


def count_events(db_url: str) -> int:
    """How many events rtrec has committed so far into `db_url`."""
    if db_url.startswith("sqlite:///"):
        path = db_url.removeprefix("sqlite:///")
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:  # the events id is SQLite's rowid, and rtrec's one writer never leaves gaps
            return int(connection.execute("SELECT max(id) FROM events").fetchone()[0] or 0)
        finally:
            connection.close()
    import psycopg

    dsn = db_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as pg:
        row = pg.execute("SELECT count(*) FROM events").fetchone()
        return int(row[0]) if row else 0


def launch(
    name: str, args: list[str], workdir: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Path]:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    return process, log


def start_rtrec(
    name: str,
    upstream: str,
    db_url: str,
    workdir: Path,
    source: Path | None = None,
    workers: int = 1,
) -> Service:
    """`rtrec proxy --record full` on free ports; `source` runs another checkout's code."""
    port, metrics_port = free_port(), free_port()
    args = [sys.executable, "-m", "rtrec.cli", "proxy", "--listen-port", str(port)]
    args += ["--metrics-port", str(metrics_port), "--upstream", upstream, "--db", db_url]
    args += ["--record", "full"]
    if workers > 1:
        args += ["--workers", str(workers)]
    env = {"PYTHONPATH": str(source)} if source else None
    process, log = launch(name, args, workdir, env)
    service = Service(name, process, port, log, metrics_port=metrics_port, db_url=db_url)
    try:
        wait_for_port(port, process, log, START_TIMEOUT_S)
        wait_for_port(metrics_port, process, log, START_TIMEOUT_S)
    except RuntimeError:
        service.stop()
        raise
    return service


def start_unrecorded(upstream: str, workdir: Path) -> Service:
    """rtrec's relay with the recorder addon left out: the ceiling recording is measured by."""
    port = free_port()
    args = [sys.executable, "-m", "benchmarks.unrecorded", str(port), upstream]
    process, log = launch("rtrec-norec", args, workdir, {"PYTHONPATH": str(REPO)})
    wait_for_port(port, process, log, START_TIMEOUT_S)
    return Service("rtrec-norec", process, port, log)


def start_mitmdump(upstream: str, workdir: Path) -> Service:
    """Stock mitmdump, quiet, no addon, in reverse mode to the upstream."""
    port = free_port()
    args = [str(VENV_BIN / "mitmdump"), "-q", "--mode", f"reverse:{upstream}"]
    args += ["--listen-host", "127.0.0.1", "--listen-port", str(port)]
    args += ["--set", f"confdir={workdir / 'mitmproxy'}"]
    process, log = launch("mitmdump", args, workdir)
    wait_for_port(port, process, log, START_TIMEOUT_S)
    return Service("mitmdump", process, port, log)


def ensure_litellm() -> Path:
    """LiteLLM's proxy in its own venv under the cache directory, installed on first use."""
    executable = LITELLM_VENV / "bin" / "litellm"
    if executable.exists():
        return executable
    logger.info("installing litellm[proxy] into %s (first run only, ~1-2 min)", LITELLM_VENV)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
    pip = [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "litellm[proxy]"], check=True, timeout=900)
    return executable


def start_litellm(upstream: str, workdir: Path, master_key: str) -> Service:
    """LiteLLM's proxy with one `model_list` entry whose `api_base` is the local upstream.

    Its `/v1/realtime` route connects to `<api_base>/v1/realtime?model=…` with the entry's key,
    and wants the proxy's master key from the client; no database is configured.
    """
    executable = ensure_litellm()
    port = free_port()
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: gpt-realtime\n"
        "    litellm_params:\n"
        "      model: openai/gpt-realtime\n"
        f"      api_base: {upstream}\n"
        "      api_key: sk-bench-upstream-key\n"
        f"general_settings:\n  master_key: {master_key}\n"
    )
    args = [str(executable), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    process, log = launch("litellm", args, workdir, env)
    wait_for_port(port, process, log, LITELLM_START_TIMEOUT_S)
    return Service("litellm", process, port, log)


def new_master_key() -> str:
    return "sk-" + secrets.token_hex(32)


def start_haproxy(backends: list[Service], workdir: Path) -> Service:
    """HAProxy in TCP mode in front of `backends`, health-checking rtrec's `/healthz`."""
    executable = "/usr/sbin/haproxy"
    port = free_port()
    servers = "\n".join(
        f"    server rtrec{i} 127.0.0.1:{b.port} check port {b.metrics_port}"
        for i, b in enumerate(backends, 1)
    )
    config = workdir / f"haproxy-{len(backends)}.cfg"
    config.write_text(
        Template(HAPROXY_TEMPLATE.read_text()).substitute(frontend_port=port, servers=servers)
    )
    process, log = launch(
        f"haproxy-{len(backends)}", [executable, "-db", "-f", str(config)], workdir
    )
    wait_for_port(port, process, log, START_TIMEOUT_S)
    return Service(f"haproxy+{len(backends)}", process, port, log, extra=backends)
