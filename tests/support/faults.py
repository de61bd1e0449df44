"""Fault scenarios: a talk through the proxy to a misbehaving service, and what got recorded."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from simulator.server import FakeRealtimeServer
from tests.support.frames import spec_type
from tests.support.proxy import ProxyProcess

KEY = "sk-faults-key-0123456789abcdef"


HANG_GUARD_S = 20.0  # how long a wait may take before the test calls it a hang


def wait_until(condition: Callable[[], Any], what: str) -> Any:
    """Poll `condition` until it is truthy; a hang guard, never a timing assertion."""
    deadline = time.monotonic() + HANG_GUARD_S
    while not (result := condition()):
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.02)
    return result


async def await_until(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + HANG_GUARD_S
    while not (result := condition()):
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        await asyncio.sleep(0.02)
    return result


def sqlite_path(db_url: str) -> Path:
    return Path(db_url.removeprefix("sqlite:///"))


def recorded(db: Path, marker: str) -> tuple[tuple[Any, ...] | None, list[tuple[Any, ...]]]:
    """(close_code, closed_by, ended_at) of the session whose path holds `marker`, and its
    events as (seq, direction, type, size_bytes), read with a fresh connection each time."""
    connection = sqlite3.connect(db, timeout=HANG_GUARD_S)
    try:
        session = connection.execute(
            "SELECT id, close_code, closed_by, ended_at FROM sessions WHERE path LIKE ?",
            (f"%{marker}%",),
        ).fetchone()
        if session is None:
            return None, []
        events = connection.execute(
            "SELECT seq, direction, type, size_bytes FROM events WHERE session_id = ? ORDER BY seq",
            (session[0],),
        ).fetchall()
        return session[1:], events
    finally:
        connection.close()


def closed(db: Path, marker: str) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """Wait for the session's close row: it is queued after all of the session's events."""
    return wait_until(
        lambda: (r := recorded(db, marker))[0] is not None and r[0][2] is not None and r,
        f"session {marker} closed in the database",
    )


def expected_events(server: FakeRealtimeServer, conn_id: int) -> list[tuple[str, str, int]]:
    """(direction, type, size) of every message the fake service logged on the connection."""
    return [
        (
            m.direction,
            spec_type(m.data),
            len(m.data.encode() if isinstance(m.data, str) else m.data),
        )
        for m in server.messages(conn_id)
    ]


def in_order(events: list[tuple[Any, ...]]) -> dict[str, list[tuple[str, int]]]:
    """Recorded events per direction, in the order each direction relayed them."""
    by_direction: dict[str, list[tuple[str, int]]] = {"client": [], "server": []}
    for _seq, direction, event_type, size in events:
        by_direction[direction].append((event_type, size))
    return by_direction


def per_direction(expected: list[tuple[str, str, int]]) -> dict[str, list[tuple[str, int]]]:
    by_direction: dict[str, list[tuple[str, int]]] = {"client": [], "server": []}
    for direction, event_type, size in expected:
        by_direction[direction].append((event_type, size))
    return by_direction


@dataclass
class Talk:
    """One raw WebSocket session through the proxy; the client keeps everything it receives."""

    server: FakeRealtimeServer
    ws: ClientConnection
    marker: str
    conn_id: int
    received: list[str | bytes] = field(default_factory=list)
    client_sent: list[str | bytes] = field(default_factory=list)
    collector: asyncio.Task[None] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, server: FakeRealtimeServer, proxy: ProxyProcess, query: str = "", **connect_args: Any
    ):
        marker = uuid.uuid4().hex
        url = f"ws://127.0.0.1:{proxy.port}/v1/realtime?model=gpt-realtime&trial={marker}"
        url += f"&{query}" if query else ""
        headers = connect_args.pop("additional_headers", {"Authorization": f"Bearer {KEY}"})
        async with connect(url, additional_headers=headers, max_size=None, **connect_args) as ws:
            first = await ws.recv()
            conn_id = next(h.conn_id for h in server.handshakes if marker in h.path)
            talk = cls(server, ws, marker, conn_id, [first])
            talk.collector = asyncio.create_task(talk._collect())
            yield talk

    async def _collect(self) -> None:
        with contextlib.suppress(ConnectionClosed, OSError):
            async for message in self.ws:
                self.received.append(message)

    async def client_says(self, data: str | bytes) -> None:
        await self.ws.send(data)
        self.client_sent.append(data)

    async def server_says(self, data: str | bytes) -> None:
        await on_server(self.server, lambda: self.server.send_raw(self.conn_id, data))

    async def settled(self) -> None:
        """Wait until the service got every client message and the client every server one."""
        await await_until(
            lambda: len(self.server.messages(self.conn_id, "client")) == len(self.client_sent),
            "the service received every client message",
        )
        # The fake service answers some messages; wait until its log stops growing and the
        # client has all of it.
        await await_until(
            lambda: len(self.received) == len(self.server.messages(self.conn_id, "server")),
            "the client received every server message",
        )

    def assert_transparent(self) -> None:
        logged_client = [m.data for m in self.server.messages(self.conn_id, "client")]
        logged_server = [m.data for m in self.server.messages(self.conn_id, "server")]
        assert logged_client == self.client_sent
        assert self.received == logged_server


async def on_server(
    server: FakeRealtimeServer, call: Callable[[], Coroutine[Any, Any, Any]]
) -> Any:
    """Run a coroutine on the fake service's own loop without blocking ours."""
    return await asyncio.to_thread(lambda: server.call_threadsafe(call(), timeout=60))


# --------------------------------------------------------------------------- observing the proxy


def scrape(proxy: ProxyProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the proxy's /metrics, keyed by name and sorted labels."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{proxy.metrics_port}/metrics").read()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


def metric_sum(proxy: ProxyProcess, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    return sum(
        value
        for (sample, sample_labels), value in scrape(proxy).items()
        if sample == name and set(labels.items()) <= set(sample_labels)
    )


def dropped(proxy: ProxyProcess, reason: str | None = None) -> float:
    labels = {"reason": reason} if reason else {}
    return metric_sum(proxy, "openai_realtime_recorder_dropped_events_total", **labels)


def health(proxy: ProxyProcess) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{proxy.metrics_port}/healthz") as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()
