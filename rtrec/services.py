"""`rtrec up`, `dashboard`, `simulate` and `demo`: the commands that run servers together."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

from proxy.options import DB, Option
from rtrec.errors import CommandError
from storage.db import open_for_writing

logger = logging.getLogger("rtrec")

DEMO_DB = Option(DB.name, "sqlite:///rtrec-demo.db", DB.help)


@contextlib.contextmanager
def _dashboard(
    db_url: str, host: str, port: int, extra_env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """The Streamlit dashboard as a child process, stopped (SIGTERM) on the way out."""
    from dashboard.launch import streamlit_command

    env = {**os.environ, "RTREC_DB": db_url, **(extra_env or {})}
    process = subprocess.Popen(streamlit_command(host, port), env=env)
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


def cmd_proxy(args: argparse.Namespace) -> int:
    serve_proxy(args)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
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
    with _dashboard(args.db, args.dashboard_host, args.dashboard_port, listen_port):
        serve_proxy(args, on_ready=announce)
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from dashboard.launch import run_dashboard

    return run_dashboard(args.db, args.host, args.port)


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulator.serve import serve_forever

    try:
        asyncio.run(serve_forever(args.host, args.port, fast=args.fast))
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot serve on {args.host}:{args.port}: {exc}") from exc
    return 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CommandError(f"{what} exited during start-up (status {process.returncode})")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise CommandError(f"{what} did not start listening on port {port}")


@contextlib.contextmanager
def _proxy_process(
    upstream: str, db_url: str, port: int, metrics_port: int
) -> Iterator[subprocess.Popen[bytes]]:
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
    process = subprocess.Popen(command)
    try:
        _wait_for_port(port, process, "the proxy")
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # the recorder flushes before it exits
            process.wait(timeout=60)


async def _demo(args: argparse.Namespace, ports: dict[str, int]) -> None:
    from simulator.demo import DemoError, run_demo
    from simulator.serve import make_server

    server = make_server("127.0.0.1", ports["simulator"], fast=args.fast)
    await server.start()
    try:
        with _proxy_process(server.base_url, args.db, ports["proxy"], ports["metrics"]):
            base_url = f"http://127.0.0.1:{ports['proxy']}/v1"
            print(f"driving sessions through the proxy at {base_url} …", flush=True)
            try:
                results = await run_demo(
                    base_url,
                    sessions=args.sessions,
                    concurrency=args.concurrency,
                    progress=lambda line: print(line, flush=True),
                )
            except DemoError as exc:
                raise CommandError(f"a demo session failed: {exc}") from exc
            live = sum(1 for result in results if result.api == "live")
            print(
                f"{len(results)} session(s) ({live} GPT-Live) run through the proxy, "
                f"recording into {args.db}",
                flush=True,
            )
            if not args.exit:
                print(_demo_banner(args, ports), flush=True)
                await _until_interrupted()
    finally:
        await server.stop()


def _demo_banner(args: argparse.Namespace, ports: dict[str, int]) -> str:
    return "\n".join(
        [
            "Look at what was recorded:",
            f"  dashboard  http://127.0.0.1:{ports['dashboard']}",
            f"  metrics    http://127.0.0.1:{ports['metrics']}/metrics",
            f"  sessions   rtrec sessions --db {args.db}",
            f"The proxy (http://127.0.0.1:{ports['proxy']}/v1, in front of the simulator) keeps "
            "serving; Ctrl-C stops everything.",
        ]
    )


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


def cmd_demo(args: argparse.Namespace) -> int:
    open_for_writing(args.db).dispose()  # the schema at head before the read-only dashboard
    ports = {name: _free_port() for name in ("simulator", "proxy", "metrics", "dashboard")}
    with contextlib.ExitStack() as stack:
        if not args.exit:
            proxy_port = {"RTREC_LISTEN_PORT": str(ports["proxy"])}
            stack.enter_context(_dashboard(args.db, "127.0.0.1", ports["dashboard"], proxy_port))
        asyncio.run(_demo(args, ports))
    return 0
