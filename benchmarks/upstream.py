"""The fake Realtime service the relays forward to: streams pre-built events, sinks client frames.

Run as its own process (`python -m benchmarks.upstream --results DIR`); it prints the port it
listens on (127.0.0.1 only). Each connection gets `session.created`, then does what the plan in
the client's first `session.update` says: stream as fast as the relay takes it ("blast", ending
with one last message once every client message has arrived) or at real-time pace ("paced",
keeping the one-way latency of every client message it receives).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import signal
import time
from array import array
from pathlib import Path

from benchmarks import traffic
from benchmarks.wire import WebSocketEndpoint

BLAST_WRITE_BATCH = 8  # frames joined into one write
_connection_ids = itertools.count()


class UpstreamConnection(WebSocketEndpoint):
    """One proxied Realtime session, seen from the service's side."""

    def __init__(self, results_dir: Path) -> None:
        super().__init__()
        self.results_dir = results_dir
        self.plan: traffic.Plan | None = None
        self.peek = 1 << 20  # the plan needs the whole first message
        self.received = 0
        self.latencies_ns = array("q")
        self.client_done = asyncio.get_running_loop().create_future()
        self.progress = asyncio.Event()  # a client message arrived (blast windows)
        self._task: asyncio.Task[None] | None = None
        self._events = traffic.server_events("voice")
        self._stop_at_ns = 0

    def on_open(self) -> None:
        self.send_event(traffic.session_created())

    def send_event(self, rest: bytes) -> None:
        assert self.transport is not None
        self.transport.write(traffic.frame(rest, time.monotonic_ns(), masked=False))

    def on_message(self, head: bytes, size: int, now_ns: int) -> None:
        plan = self.plan
        if plan is None:
            self._start(head)
            return
        self.received += 1
        if plan.mode == "paced":
            stamp = traffic.stamp_of(head)
            if stamp is not None and stamp >= plan.warmup_until_ns:
                self.latencies_ns.append(now_ns - stamp)
        else:
            self.progress.set()
            if self.received == plan.client_frames and not self.client_done.done():
                self.client_done.set_result(None)

    def _start(self, message: bytes) -> None:
        with contextlib.suppress(ValueError):
            self.plan = traffic.Plan.from_event(json.loads(message))
        if self.plan is None:
            return
        self.peek = 0 if self.plan.mode == "blast" else 96
        self._events = traffic.server_events(self.plan.mix)
        self.send_event(traffic.session_updated())
        if self.plan.mode == "blast":
            if self.plan.client_frames == 0:
                self.client_done.set_result(None)
            self._task = asyncio.get_running_loop().create_task(self._blast(self.plan))
        else:
            self._stop_at_ns = time.monotonic_ns() + int(self.plan.duration_s * 1e9)
            self._paced_send()

    async def _blast(self, plan: traffic.Plan) -> None:
        assert self.transport is not None
        write, events, frame = self.transport.write, self._events, traffic.frame
        sent = 0
        while sent < plan.server_frames - 1:
            while sent >= plan.allowed(False, self.received) and not self.transport.is_closing():
                self.progress.clear()
                await self.progress.wait()
            batch = min(
                BLAST_WRITE_BATCH,
                plan.server_frames - 1 - sent,
                max(1, plan.allowed(False, self.received) - sent),
            )
            write(b"".join(frame(next(events), sent + i, masked=False) for i in range(batch)))
            sent += batch
            await self.writable()
            if sent % 256 < BLAST_WRITE_BATCH:
                await asyncio.sleep(0)  # let the other sessions of this process run
            if self.transport.is_closing():
                return
        await self.client_done
        if not self.transport.is_closing():
            self.send_event(next(events))

    def _paced_send(self) -> None:
        """Send the next server event now and schedule the one after it 20-50 ms later."""
        if self.transport is None or self.transport.is_closing():
            return
        now = time.monotonic_ns()
        if now >= self._stop_at_ns:
            return
        self.send_event(next(self._events))
        asyncio.get_running_loop().call_later(random.uniform(0.020, 0.050), self._paced_send)

    def on_closed(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.plan is not None and self.plan.mode == "paced":
            name = f"{self.plan.tag}.{next(_connection_ids)}.upstream.bin"
            with (self.results_dir / name).open("wb") as out:
                self.latencies_ns.tofile(out)


async def serve(port: int, results_dir: Path) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: UpstreamConnection(results_dir), "127.0.0.1", port, backlog=2048
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--results", type=Path, required=True, help="where latency files go")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.results))


if __name__ == "__main__":
    main()
