"""The load client: N concurrent Realtime sessions against a relay (or the upstream directly).

Run as its own process so that it never shares a GIL with the upstream or the relay; prints one
JSON object: when the traffic started and ended (monotonic seconds), how many messages went each
way, and how many sessions failed. Paced runs also write every server message's one-way latency
to `<results>/<tag>.client.bin` (int64 ns).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from array import array
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import traffic
from benchmarks.wire import WebSocketEndpoint, upgrade_request

CONNECT_PARALLEL = 32
CLOSE_TIMEOUT_S = 5.0


class ClientSession(WebSocketEndpoint):
    """One Realtime session from the client's side, following a `Plan`."""

    is_client = True

    def __init__(self, args: argparse.Namespace, plan: traffic.Plan) -> None:
        super().__init__()
        self._request, self._expected_accept = upgrade_request(
            args.host, args.port, args.path, args.api_key
        )
        self.plan = plan
        self.received = 0
        self.sent = 0
        self.latencies_ns = array("q")
        loop = asyncio.get_running_loop()
        self.ready = loop.create_future()  # session.created arrived
        self.done = loop.create_future()  # every expected server message arrived
        self._expected = 1 + plan.server_frames  # session.updated, then the plan's messages
        self._event = traffic.client_event(plan.mix)
        self.progress = asyncio.Event()  # a server message arrived (blast windows)
        self._stop_at_ns = 0

    def handshake_failed(self, status_line: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"upgrade refused: {status_line}"))

    def on_message(self, head: bytes, size: int, now_ns: int) -> None:
        if not self.ready.done():
            self.ready.set_result(None)
            return
        self.received += 1
        if self.plan.mode == "paced":
            stamp = traffic.stamp_of(head)
            if stamp is not None and stamp >= self.plan.warmup_until_ns:
                self.latencies_ns.append(now_ns - stamp)
        else:
            self.progress.set()
            if self.received >= self._expected and not self.done.done():
                self.done.set_result(time.monotonic())

    def on_closed(self) -> None:
        self.progress.set()
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("connection closed before session.created"))
        if self.done.done():
            return
        if self.plan.mode == "blast":
            self.done.set_exception(ConnectionError("connection closed early"))
        else:
            self.done.set_result(time.monotonic())

    async def blast(self) -> None:
        """Send the plan, then every client message as fast as flow control allows."""
        assert self.transport is not None
        self.send(self.plan.session_update())
        write, event = self.transport.write, self._event
        plan = self.plan
        while self.sent < plan.client_frames and not self.transport.is_closing():
            while self.sent >= plan.allowed(True, self.received) and not self.closed.done():
                self.progress.clear()
                await self.progress.wait()
            batch = min(
                8,
                plan.client_frames - self.sent,
                max(1, plan.allowed(True, self.received) - self.sent),
            )
            write(b"".join(traffic.frame(event, self.sent + i, masked=True) for i in range(batch)))
            self.sent += batch
            await self.writable()
            if self.sent % 256 < 8:
                await asyncio.sleep(0)

    async def paced(self) -> None:
        """Send the plan, then one message every 100 ms (stamped) until the plan's duration."""
        self.send(self.plan.session_update())
        self._stop_at_ns = time.monotonic_ns() + int(self.plan.duration_s * 1e9)
        loop = asyncio.get_running_loop()
        loop.call_later(random.uniform(0, traffic.CLIENT_APPEND_MS / 1000), self._tick)
        await asyncio.sleep(self.plan.duration_s + 0.3)  # the upstream's last frames arrive

    def _tick(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        now = time.monotonic_ns()
        if now >= self._stop_at_ns:
            return
        self.transport.write(traffic.frame(self._event, now, masked=True))
        self.sent += 1
        asyncio.get_running_loop().call_later(traffic.CLIENT_APPEND_MS / 1000, self._tick)

    async def finish(self) -> None:
        self.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.closed), CLOSE_TIMEOUT_S)
        if self.transport is not None:
            self.transport.close()


async def _connect(args: argparse.Namespace, plan: traffic.Plan) -> ClientSession:
    loop = asyncio.get_running_loop()
    _, session = await loop.create_connection(
        lambda: ClientSession(args, plan), args.host, args.port
    )
    await asyncio.wait_for(session.ready, 30)
    return session


async def run(args: argparse.Namespace) -> dict[str, Any]:
    plan = traffic.Plan(**json.loads(args.plan))
    gate = asyncio.Semaphore(CONNECT_PARALLEL)

    async def connect() -> ClientSession:
        async with gate:
            return await _connect(args, plan)

    sessions = await asyncio.gather(*(connect() for _ in range(args.sessions)))
    started = time.monotonic()
    if plan.mode == "paced":
        plan = traffic.Plan(**{**asdict(plan), "warmup_until_ns": int((started + 1.0) * 1e9)})
        for session in sessions:
            session.plan = plan
    work = [s.paced() if plan.mode == "paced" else s.blast() for s in sessions]
    await asyncio.gather(*work)
    ended = started
    failed = 0
    if plan.mode == "blast":
        for outcome in await asyncio.gather(*(s.done for s in sessions), return_exceptions=True):
            if isinstance(outcome, float):
                ended = max(ended, outcome)
            else:
                failed += 1
    else:
        ended = time.monotonic()
        _write_latencies(Path(args.results), plan.tag, sessions)
    await asyncio.gather(*(s.finish() for s in sessions))
    return {
        "started": started,
        "ended": ended,
        "sent": sum(s.sent for s in sessions),
        "received": sum(s.received for s in sessions),
        "failed": failed,
    }


def _write_latencies(results: Path, tag: str, sessions: list[ClientSession]) -> None:
    with (results / f"{tag}.client.bin").open("wb") as out:
        for session in sessions:
            session.latencies_ns.tofile(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default=f"/v1/realtime?model={traffic.MODEL}")
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--plan", required=True, help="a traffic.Plan as JSON")
    parser.add_argument("--api-key", default="sk-bench-0000000000000000", help="sent as Bearer")
    parser.add_argument("--results", default=".", help="where paced runs write latencies")
    args = parser.parse_args()
    try:
        outcome = asyncio.run(run(args))
    except (OSError, ConnectionError, TimeoutError) as exc:
        outcome = {"error": f"{type(exc).__name__}: {exc}"}
    json.dump(outcome, sys.stdout)
    print(flush=True)


if __name__ == "__main__":
    main()
