"""The servers commands run as children (proxy, dashboard), and `rtrec up`, which runs them all."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from rtrec.errors import CommandError
from storage.db import open_for_writing

logger = logging.getLogger("rtrec")


@contextlib.contextmanager
def dashboard_process(
    db_url: str,
    host: str,
    port: int,
    extra_env: dict[str, str] | None = None,
    log: IO[bytes] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """The Streamlit dashboard as a child process (its output into `log`, default ours),
    stopped (SIGTERM) on the way out."""
    from dashboard.launch import streamlit_command

    env = {**os.environ, "RTREC_DB": db_url, **(extra_env or {})}
    process = subprocess.Popen(streamlit_command(host, port), env=env, stdout=log, stderr=log)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def banner(
    proxy_url: str, upstream: str, metrics_url: str | None, dashboard_url: str | None
) -> str:
    lines = ["rtrec is up:", f"  proxy      {proxy_url}  (to {upstream})"]
    if dashboard_url:
        lines.append(f"  dashboard  {dashboard_url}")
    if metrics_url:
        lines.append(f"  metrics    {metrics_url}")
    lines += ["Point your client at the proxy:", f"  OPENAI_BASE_URL={proxy_url}/v1"]
    return "\n".join(lines)


def serve_proxy(args: argparse.Namespace, on_ready: Callable[[], None] | None = None) -> None:
    """Run the proxy in this process with the options parsed into `args`, until Ctrl-C."""
    from proxy.master import ProxyConfig, ProxyStartError, serve

    config = ProxyConfig(**{name: getattr(args, name) for name in ProxyConfig.__dataclass_fields__})
    try:
        serve(config, on_ready)
    except ProxyStartError as exc:
        raise CommandError(str(exc)) from exc


def run_up(args: argparse.Namespace) -> int:
    """Check every address and the database first; announce only once all of it runs."""
    from proxy.master import ProxyStartError, check_can_listen

    try:
        check_can_listen(
            args.dashboard_host, args.dashboard_port, "--dashboard-host/--dashboard-port"
        )
    except ProxyStartError as exc:
        raise CommandError(str(exc)) from exc
    open_for_writing(args.db).dispose()  # the schema at head before the read-only dashboard
    metrics_url = (
        f"http://{args.metrics_host}:{args.metrics_port}/metrics" if args.metrics_port else None
    )
    dashboard_url = f"http://{args.dashboard_host}:{args.dashboard_port}"
    proxy_url = f"http://{args.listen_host}:{args.listen_port}"

    def announce() -> None:
        print(banner(proxy_url, args.upstream, metrics_url, dashboard_url), flush=True)

    # The dashboard's empty-state hint names the port clients should use.
    listen_port = {"RTREC_LISTEN_PORT": str(args.listen_port)}
    # Streamlit's and uvicorn's own start-up lines, in their formats, go to a file: the banner
    # is what rtrec says, last, once the dashboard answers.
    with (
        tempfile.NamedTemporaryFile(prefix="rtrec-dashboard-", suffix=".log") as log,
        dashboard_process(
            args.db, args.dashboard_host, args.dashboard_port, listen_port, log
        ) as dashboard,
    ):
        warm_dashboard(args.dashboard_host, args.dashboard_port, dashboard, Path(log.name))
        serve_proxy(args, on_ready=announce)
    return 0


def _connectable(host: str) -> str:
    """Where to reach a server listening on `host`: a wildcard address is reached on loopback."""
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host.strip("[]")).is_unspecified:
            return "127.0.0.1"
    return host


def warm_dashboard(
    host: str, port: int, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 120
) -> None:
    """Fetch the dashboard's first page until it answers, then run that page once, so the
    announced URL works at once and its first visitor's page draws from a warm server."""
    # Imported (Streamlit's messages: most of a second) while the dashboard starts up.
    from websockets.exceptions import WebSocketException

    from dashboard.warm import run_first_page

    url = f"http://{_connectable(host)}:{port}/"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text(errors="replace").strip().splitlines()
            last = output[-1] if output else "no output"
            raise CommandError(
                f"the dashboard exited during start-up (status {process.returncode}): {last}"
            )
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as page:
            page.read()
            break
        time.sleep(0.2)
    else:
        raise CommandError(f"the dashboard did not answer at {url} within {timeout_s:g} s")
    try:
        if not run_first_page(url, timeout_s=max(1.0, deadline - time.monotonic())):
            logger.warning("the dashboard's first page failed its warm-up run: see the page")
    except (OSError, WebSocketException) as exc:  # TimeoutError too: the page answers; go on
        logger.warning("the dashboard's first page could not be warmed up: %s", exc)


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CommandError(f"{what} exited during start-up (status {process.returncode})")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise CommandError(f"{what} did not start listening on port {port}")


@contextlib.contextmanager
def proxy_process(
    upstream: str, db_url: str, port: int, metrics_port: int, log: IO[bytes] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """An `rtrec proxy` child on 127.0.0.1:`port`, its output into `log` (default: ours)."""
    command = [
        sys.executable,
        "-m",
        "rtrec.cli",
        "proxy",
        "--listen-port",
        str(port),
        "--metrics-port",
        str(metrics_port),
        "--upstream",
        upstream,
        "--db",
        db_url,
    ]
    process = subprocess.Popen(command, stdout=log, stderr=log)
    try:
        wait_for_port(port, process, "the proxy")
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # the recorder flushes before it exits
            process.wait(timeout=60)
