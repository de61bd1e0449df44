"""`rtrec demo`: simulator, proxy and dashboard with scripted sessions recorded through them."""

from __future__ import annotations

import argparse
import contextlib
import functools
import shlex
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rtrec.errors import CommandError
from rtrec.net import free_port
from rtrec.settings import DB, Option, add_settings, positive_int

DEMO_DB = Option(DB.name, "sqlite:///rtrec-demo.db", DB.help)


def add_parser(commands: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "demo", help="simulator + proxy + dashboard with scripted sessions and a call recorded"
    )
    add_settings(parser, [DEMO_DB])
    parser.add_argument("--exit", action="store_true", help="end after the sessions")
    parser.add_argument("--fast", action="store_true", help="an unpaced simulator")
    parser.add_argument(
        "--sessions",
        type=positive_int,
        default=None,
        metavar="N",
        help="run N sessions cycling through the scenarios (a load generator; no call)",
    )
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        default=1,
        metavar="C",
        help="with --sessions: at most C sessions at once",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    _record(args)
    if args.exit:
        db = shlex.quote(args.db)
        print(
            "Look at the result:\n"
            f"  uv run rtrec dashboard --db {db}\n  uv run rtrec sessions --db {db}\n"
            f"  uv run rtrec calls --db {db}"
        )
    return 0


async def _demo(
    args: argparse.Namespace, ports: dict[str, int], warm: Callable[[], None] | None = None
) -> None:
    """Record the demo through a proxy; unless `--exit`, `warm` the dashboard, say where to look
    and serve until Ctrl-C."""
    import asyncio

    from rtrec import services
    from simulator.serve import make_server

    server = make_server("127.0.0.1", ports["simulator"], fast=args.fast)
    await server.start()
    try:
        with services.proxy_process(server.base_url, args.db, ports["proxy"], ports["metrics"]):
            base_url = f"http://127.0.0.1:{ports['proxy']}/v1"
            print(f"driving sessions through the proxy at {base_url} …", flush=True)
            print(f"{await _drive(args, base_url)} recorded into {args.db}", flush=True)
            if not args.exit:
                if warm is not None:  # the dashboard's first page run once, on the recording
                    await asyncio.to_thread(warm)
                print(_demo_banner(args, ports), flush=True)
                await _until_interrupted()
    finally:
        await server.stop()


async def _drive(args: argparse.Namespace, base_url: str) -> str:
    """Run the scripted sessions, then (unless a load generator) one WebRTC call watched by its
    sideband; what was driven, as the summary line starts."""
    from simulator.demo import DemoError, run_demo, run_demo_call

    def progress(line: str) -> None:
        print(line, flush=True)

    try:
        results = await run_demo(
            base_url, sessions=args.sessions, concurrency=args.concurrency, progress=progress
        )
        live = sum(1 for result in results if result.api == "live")
        if args.sessions is not None:
            return f"{len(results)} session(s) ({live} GPT-Live)"
        progress((await run_demo_call(base_url)).summary())
    except DemoError as exc:
        raise CommandError(f"a demo session failed: {exc}") from exc
    # The call's sideband is a session of its own, linked to the call.
    return f"{len(results) + 1} session(s) ({live} GPT-Live, 1 WebRTC call)"


def _demo_banner(args: argparse.Namespace, ports: dict[str, int]) -> str:
    return "\n".join(
        [
            "Look at what was recorded:",
            f"  dashboard  http://127.0.0.1:{ports['dashboard']}",
            f"  metrics    http://127.0.0.1:{ports['metrics']}/metrics",
            f"  sessions   uv run rtrec sessions --db {shlex.quote(args.db)}",
            f"  calls      uv run rtrec calls --db {shlex.quote(args.db)}",
            f"The proxy (http://127.0.0.1:{ports['proxy']}/v1, in front of the simulator) keeps "
            "serving; Ctrl-C stops everything.",
        ]
    )


async def _until_interrupted() -> None:
    import asyncio

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


def _record(args: argparse.Namespace) -> None:
    import asyncio  # not at the top: every command's start-up would pay for it

    from rtrec import services
    from storage.db import open_for_writing

    open_for_writing(args.db).dispose()  # the schema at head before the read-only dashboard
    ports = {name: free_port() for name in ("simulator", "proxy", "metrics", "dashboard")}
    with contextlib.ExitStack() as stack:
        warm = None
        if not args.exit:
            proxy_port = {"RTREC_LISTEN_PORT": str(ports["proxy"])}
            # Streamlit's own lines go to a log: the demo's banner is what it says last.
            log = stack.enter_context(tempfile.NamedTemporaryFile(prefix="rtrec-dashboard-"))
            dashboard = stack.enter_context(
                services.dashboard_process(
                    args.db, "127.0.0.1", ports["dashboard"], proxy_port, log
                )
            )
            warm = functools.partial(
                services.warm_dashboard, "127.0.0.1", ports["dashboard"], dashboard, Path(log.name)
            )
        asyncio.run(_demo(args, ports, warm))
