"""The recorder process behind a real `rtrec proxy`: killed, restarted, fed by several relays."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import websockets
from sqlalchemy import func, select
from websockets.exceptions import ConnectionClosed
from wsproto.utilities import generate_accept_token

from proxy.master import ProxyStartError, _wait_until_listening
from simulator.server import FakeRealtimeServer, run_in_thread
from storage.db import make_engine
from storage.models import Event, RealtimeSession, table
from tests.support.net import free_port
from tests.support.proxy import ProxyProcess, start_proxy

KEY = "sk-recorder-process-test-0123456789"


@pytest.fixture
def upstream() -> Iterator[FakeRealtimeServer]:
    """The fake service on its own thread: these tests drive sessions with `asyncio.run`."""
    with run_in_thread() as server:
        yield server


def children(pid: int) -> list[int]:
    """Children of every thread of `pid` (a restarted recorder is its watcher thread's)."""
    return [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]


def descendants_running(pid: int, module: str) -> list[int]:
    """Processes under `pid` whose command line runs `python -m module`."""
    found, todo = [], children(pid)
    while todo:
        child = todo.pop()
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            todo += children(child)
        except OSError:
            continue
        if module.encode() in command:
            found.append(child)
    return found


def wait_until[T](probe: Callable[[], T], what: str, timeout_s: float = 30.0) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def scrape(proxy: ProxyProcess) -> dict[str, float]:
    """Samples summed by name and labels, e.g. `x_total{reason="a"}` -> 3."""
    url = f"http://127.0.0.1:{proxy.metrics_port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return {}
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def healthz(proxy: ProxyProcess) -> str:
    url = f"http://127.0.0.1:{proxy.metrics_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())
    except (urllib.error.URLError, OSError):
        return ""


def recorded_events(db_url: str) -> list[Any]:
    engine = make_engine(db_url)
    with engine.connect() as connection:
        rows = list(connection.execute(select(table(Event)).order_by(table(Event).c.seq)))
    engine.dispose()
    return rows


def count_rows(db_url: str, model: type) -> int:
    engine = make_engine(db_url)
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(table(model))).scalar_one()
    engine.dispose()
    return int(count)


@contextlib.asynccontextmanager
async def connected(proxy: ProxyProcess) -> AsyncIterator[Any]:
    """A Realtime session through the proxy, once its `session.created` has arrived."""
    client = openai.AsyncOpenAI(api_key=KEY, base_url=proxy.base_url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.recv_bytes()  # session.created
        yield conn


async def say(conn: Any, n: int) -> None:
    await conn.send_raw(json.dumps({"type": "conversation.item.create", "n": n}))


def test_a_killed_recorder_is_started_again_and_gets_what_it_had_not_committed(
    upstream: FakeRealtimeServer, run_proxy: Callable[..., ProxyProcess], db_url: str
):
    proxy = run_proxy(upstream.base_url, db_url)
    (recorder,) = descendants_running(proxy.process.pid, "recorder.main")

    async def session() -> None:
        async with connected(proxy) as conn:
            for n in range(3):
                await say(conn, n)
                await conn.recv_bytes()  # its answer
            os.kill(recorder, signal.SIGKILL)  # what it had not committed is sent again
            await asyncio.to_thread(
                wait_until, lambda: not healthz(proxy), "the dead recorder's endpoint to go"
            )
            for n in range(3, 8):  # relayed while no recorder runs: kept for the next one
                await say(conn, n)
            await asyncio.to_thread(
                wait_until,
                lambda: descendants_running(proxy.process.pid, "recorder.main") and healthz(proxy),
                "a new recorder",
            )
            await asyncio.sleep(1.0)  # the relay reconnects within half a second
            for n in range(8, 10):
                await say(conn, n)
            await asyncio.sleep(0.5)

    asyncio.run(session())
    relayed = len(upstream.messages())
    health = healthz(proxy)
    assert health.startswith("ok"), health
    assert "restarted 1 time" in health, health
    drops = {k: v for k, v in scrape(proxy).items() if "dropped_events_total" in k and v}
    assert drops == {}
    assert proxy.stop() == 0
    events = recorded_events(db_url)
    assert len(events) == relayed
    sent = [
        json.loads(e.payload)["n"] if isinstance(e.payload, str) else e.payload["n"]
        for e in events
        if e.direction == "client"
    ]
    assert sent == list(range(10))
    engine = make_engine(db_url)
    with engine.connect() as connection:
        (row,) = connection.execute(select(table(RealtimeSession)))
    engine.dispose()
    assert row.close_code is not None  # the new recorder learnt of the session and closed it


def test_a_session_closed_while_the_recorder_restarts_is_closed_in_the_database(
    upstream: FakeRealtimeServer, run_proxy: Callable[..., ProxyProcess], db_url: str
):
    proxy = run_proxy(upstream.base_url, db_url)
    (recorder,) = descendants_running(proxy.process.pid, "recorder.main")

    async def session() -> None:
        async with connected(proxy) as conn:
            await say(conn, 0)
            await conn.recv_bytes()
            os.kill(recorder, signal.SIGKILL)
            await say(conn, 1)
        # closed here, while no recorder runs (the next one needs a second to start)

    asyncio.run(session())
    assert not descendants_running(proxy.process.pid, "recorder.main") or not healthz(proxy)
    wait_until(lambda: healthz(proxy), "a new recorder")

    def closed_session() -> Any:
        engine = make_engine(db_url)
        with engine.connect() as connection:
            rows = list(connection.execute(select(table(RealtimeSession))))
        engine.dispose()
        return rows[0] if len(rows) == 1 and rows[0].close_code is not None else None

    row = wait_until(closed_session, "the session closed in the database")
    assert (row.close_code, row.closed_by) == (1000, "client")
    assert len(recorded_events(db_url)) == len(upstream.messages())


SESSIONS = 16


def sockets(pid: int) -> int:
    fds = Path(f"/proc/{pid}/fd")
    return sum(1 for fd in fds.iterdir() if os.readlink(fd).startswith("socket:"))


def test_two_workers_share_the_port_and_feed_one_recorder(
    upstream: FakeRealtimeServer, run_proxy: Callable[..., ProxyProcess], db_url: str
):
    proxy = run_proxy(upstream.base_url, db_url, "--workers", "2")
    # The port answers once the first relay listens; the banner waits for every relay.
    deadline = time.monotonic() + 60
    while "rtrec proxy on" not in proxy.log:
        assert time.monotonic() < deadline, proxy.log
        assert proxy.process.poll() is None, proxy.log
        time.sleep(0.05)
    relays = descendants_running(proxy.process.pid, "proxy.master")
    assert len(relays) == 2
    assert len(descendants_running(proxy.process.pid, "recorder.main")) == 1

    baseline = {pid: sockets(pid) for pid in relays}
    all_open = asyncio.Event()
    opened: list[int] = []
    grown: dict[int, int] = {}

    async def one(n: int) -> None:
        client = openai.AsyncOpenAI(api_key=KEY, base_url=proxy.base_url)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            await conn.recv_bytes()
            await say(conn, n)
            await conn.recv_bytes()  # the answer: nothing is left in flight when we close
            opened.append(n)
            if len(opened) == SESSIONS:
                grown.update({pid: sockets(pid) - baseline[pid] for pid in relays})
                all_open.set()
            await all_open.wait()

    async def many() -> None:
        await asyncio.gather(*(one(n) for n in range(SESSIONS)))

    asyncio.run(many())
    # The kernel spread the connections: each relay holds some (2 sockets per session). With 16
    # sessions hashed over 2 listeners, all on one happens once in 30,000 runs.
    assert all(count > 0 for count in grown.values()), grown
    assert proxy.stop() == 0
    assert count_rows(db_url, RealtimeSession) == SESSIONS
    assert len(recorded_events(db_url)) == len(upstream.messages())


def test_a_start_logs_what_an_operator_needs_and_no_migration_chatter(
    upstream: FakeRealtimeServer, run_proxy: Callable[..., ProxyProcess], sqlite_db_url: str
):
    proxy = run_proxy(upstream.base_url, sqlite_db_url)
    assert proxy.stop() == 0
    assert "recorder ready on" in proxy.log
    assert "rtrec proxy on http://127.0.0.1" in proxy.log
    assert "alembic" not in proxy.log, proxy.log


def test_a_password_in_the_database_url_query_is_not_logged(
    upstream: FakeRealtimeServer, run_proxy: Callable[..., ProxyProcess], postgres_db_url: str
):
    # The test server trusts local connections: the password is ignored, only its spelling counts.
    proxy = run_proxy(upstream.base_url, f"{postgres_db_url}?password=planted-db-secret-42")
    assert proxy.stop() == 0
    assert "recording to postgresql+psycopg://" in proxy.log
    assert "planted-db-secret-42" not in proxy.log, proxy.log


def test_ctrl_c_with_a_live_session_stops_quietly_and_closes_it(
    upstream: FakeRealtimeServer, run_proxy: Callable[..., ProxyProcess], db_url: str
):
    proxy = run_proxy(upstream.base_url, db_url)

    async def session() -> None:
        client = openai.AsyncOpenAI(api_key=KEY, base_url=proxy.base_url)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            await conn.recv_bytes()
            await say(conn, 1)
            await conn.recv_bytes()  # the service's answer: all traffic so far is relayed
            proxy.process.send_signal(signal.SIGINT)
            with contextlib.suppress(Exception):
                while True:
                    await conn.recv_bytes()

    asyncio.run(session())
    assert proxy.process.wait(60) == 0
    assert "Traceback" not in proxy.log, proxy.log
    engine = make_engine(db_url)
    with engine.connect() as connection:
        (row,) = connection.execute(select(table(RealtimeSession)))
    engine.dispose()
    assert row.close_reason == "proxy shut down"
    assert row.ended_at is not None
    assert len(recorded_events(db_url)) == len(upstream.messages())


def test_ctrl_c_sends_close_1001_to_the_client_and_the_service(
    upstream: FakeRealtimeServer, run_proxy: Callable[..., ProxyProcess], db_url: str
):
    proxy = run_proxy(upstream.base_url, db_url)

    async def session() -> ConnectionClosed:
        client = openai.AsyncOpenAI(api_key=KEY, base_url=proxy.base_url)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            await conn.recv_bytes()  # session.created: the session is live at both ends
            proxy.process.send_signal(signal.SIGINT)
            try:
                while True:
                    await conn.recv_bytes()
            except ConnectionClosed as closed:
                return closed

    closed = asyncio.run(session())
    assert closed.rcvd is not None, "the connection ended without a close frame"
    assert (closed.rcvd.code, closed.rcvd.reason) == (1001, "proxy shut down")
    (handshake,) = upstream.handshakes
    code, reason, first = upstream.call_threadsafe(upstream.wait_closed(handshake.conn_id))
    assert (code, reason, first) == (1001, "proxy shut down", "client")  # the proxy is its client
    assert proxy.process.wait(60) == 0
    engine = make_engine(db_url)
    with engine.connect() as connection:
        (row,) = connection.execute(select(table(RealtimeSession)))
    engine.dispose()
    assert (row.close_code, row.close_reason, row.closed_by) == (1001, "proxy shut down", None)
    assert row.ended_at is not None


def test_sessions_a_killed_proxy_left_open_are_closed_at_its_next_start(
    upstream: FakeRealtimeServer, tmp_path: Path, db_url: str
):
    port = free_port()
    args = [sys.executable, "-m", "rtrec.cli", "proxy", "--listen-port", str(port)]
    args += ["--metrics-port", "0", "--upstream", upstream.base_url, "--db", db_url]
    first = start_proxy(args, port, 0, tmp_path / "first.log")
    base_url = f"http://127.0.0.1:{port}/v1"

    async def left_open() -> None:
        client = openai.AsyncOpenAI(api_key=KEY, base_url=base_url)
        async with client.realtime.connect(model="gpt-realtime") as conn:
            await conn.recv_bytes()
            await asyncio.to_thread(
                wait_until, lambda: count_rows(db_url, RealtimeSession) == 1, "the session row"
            )
            # Everything dies at once, as in a power cut: nobody closes the session.
            for pid in descendants_running(first.process.pid, "recorder.main"):
                os.kill(pid, signal.SIGKILL)
            first.process.kill()
            with contextlib.suppress(Exception):
                await conn.recv_bytes()

    asyncio.run(left_open())
    first.process.wait()
    engine = make_engine(db_url)
    sessions = table(RealtimeSession)
    with engine.begin() as connection:
        (orphan,) = connection.execute(select(sessions))
        assert orphan.ended_at is None
        # Another proxy's live session in the same store must stay open.
        values = dict(orphan._mapping)
        values.update(id="other-proxy-session", proxy_id="elsewhere:8080")
        connection.execute(sessions.insert().values(values))
    second = start_proxy(args, port, 0, tmp_path / "second.log")
    assert second.stop() == 0
    with engine.connect() as connection:
        rows = {row.id: row for row in connection.execute(select(sessions))}
    engine.dispose()
    assert rows[orphan.id].ended_at is not None
    assert "stopped without closing it" in rows[orphan.id].close_reason
    assert rows["other-proxy-session"].ended_at is None
    assert "closed 1 session(s) this proxy left open" in second.log


def test_workers_that_exit_before_they_listen_stop_the_start_with_one_line():
    listening, told = os.pipe()
    relays = [
        subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"], pass_fds=(told,))
        for _ in range(2)
    ]
    os.close(told)
    with pytest.raises(ProxyStartError, match="a relay process exited during start-up"):
        _wait_until_listening(listening, relays)
    os.close(listening)
    assert [relay.wait() for relay in relays] == [3, 3]


@contextlib.contextmanager
def silent_upstream() -> Iterator[str]:
    """An upstream that accepts the WebSocket upgrade, then never answers again (not even a
    close frame): a stopping proxy waits the whole close window on its sessions."""
    listener = socket.create_server(("127.0.0.1", 0))
    connections: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            connections.append(conn)
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            key = re.search(rb"(?i)sec-websocket-key: *(\S+)", request)
            assert key is not None
            accept = generate_accept_token(key[1])
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        for conn in connections:
            conn.close()


def test_a_stopping_proxy_refuses_new_clients_while_it_closes_its_sessions(
    run_proxy: Callable[..., ProxyProcess], sqlite_db_url: str
):
    with silent_upstream() as upstream_url:
        proxy = run_proxy(upstream_url, sqlite_db_url)

        async def stop_with_a_live_session() -> None:
            url = f"ws://127.0.0.1:{proxy.port}/v1/realtime?model=gpt-realtime"
            async with websockets.connect(url, additional_headers={"Authorization": "Bearer x"}):
                proxy.process.send_signal(signal.SIGINT)
                await asyncio.sleep(0.5)  # inside the close window: the upstream never answers
                assert proxy.process.poll() is None
                with pytest.raises(ConnectionRefusedError):
                    socket.create_connection(("127.0.0.1", proxy.port), timeout=1).close()

        asyncio.run(stop_with_a_live_session())
        assert proxy.process.wait(60) == 0
