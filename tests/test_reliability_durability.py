"""Stopping the proxy: SIGTERM and SIGINT flush every queued event; SIGKILL loses only the last."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from simulator.server import FakeRealtimeServer, run_in_thread
from storage.db import make_engine
from storage.models import Event, RealtimeSession
from tests.support.faults import (
    HANG_GUARD_S,
    Talk,
    expected_events,
    in_order,
    per_direction,
    recorded,
    sqlite_path,
)
from tests.support.proxy import ProxyProcess

FLUSH_INTERVAL_MS = 100
# README: `--flush-interval-ms` is the longest a record waits before its batch is committed,
# so what SIGKILL can lose. The margin is for scheduling only: the relay hands frames over at
# the end of its event-loop iteration, and this test's own threads share a busy machine.
SCHEDULING_MARGIN_S = 0.05


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeRealtimeServer]:
    with run_in_thread() as server:
        yield server


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_flushes_every_queued_event(
    upstream: FakeRealtimeServer,
    run_proxy: Callable[..., ProxyProcess],
    sqlite_db_url: str,
    stop_signal: signal.Signals,
):
    db = sqlite_path(sqlite_db_url)
    # Nothing is committed on its own for ten minutes: whatever is stored, the shutdown stored.
    proxy = run_proxy(upstream.base_url, sqlite_db_url, "--flush-interval-ms", "600000")

    async def two_sessions() -> list[Talk]:
        talks = []
        async with Talk.open(upstream, proxy) as finished:
            for n in range(40):
                await finished.client_says(json.dumps({"type": "closed.session", "n": n}))
                await finished.server_says(json.dumps({"type": "server.event", "n": n}))
            await finished.settled()
            talks.append(finished)
        async with Talk.open(upstream, proxy) as still_open:  # the signal comes mid-session
            for n in range(40):
                await still_open.client_says(json.dumps({"type": "open.session", "n": n}))
            await still_open.server_says(b"\x01\x02 binary")
            await still_open.settled()
            talks.append(still_open)
            assert [recorded(db, t.marker) for t in talks] == [(None, [])] * 2  # still queued
            proxy.process.send_signal(stop_signal)
            await asyncio.to_thread(proxy.process.wait, HANG_GUARD_S)
        return talks

    talks = asyncio.run(two_sessions())
    assert proxy.process.returncode == 0
    for talk in talks:
        session, events = recorded(db, talk.marker)
        assert session is not None
        assert session[2] is not None  # ended_at: even the session cut short is closed
        assert in_order(events) == per_direction(expected_events(upstream, talk.conn_id))


def recorder_pids(proxy: ProxyProcess) -> list[int]:
    """The proxy's child processes: its recorder process (read before the proxy dies)."""
    pid = proxy.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def exited(pid: int) -> bool:
    """Gone, or a zombie nobody reaped (an orphan's new parent may not be an init)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def stored_events(db_url: str, marker: str) -> dict[str, list[tuple[str, int]]]:
    """(type, size) of each event of the session whose path holds `marker`, per direction."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(Event.direction, Event.type, Event.size_bytes)
                .join(RealtimeSession, RealtimeSession.id == Event.session_id)
                .where(RealtimeSession.path.contains(marker))
                .order_by(Event.seq)
            ).all()
    finally:
        engine.dispose()
    by_direction: dict[str, list[tuple[str, int]]] = {"client": [], "server": []}
    for direction, event_type, size in rows:
        by_direction[direction].append((event_type, size))
    return by_direction


def test_sigkill_keeps_the_database_intact_and_loses_only_the_last_flush_interval(
    upstream: FakeRealtimeServer, run_proxy: Callable[..., ProxyProcess], db_url: str
):
    proxy = run_proxy(upstream.base_url, db_url, "--flush-interval-ms", str(FLUSH_INTERVAL_MS))
    recorders = recorder_pids(proxy)
    assert recorders, "rtrec proxy runs its recorder as a child process"

    async def talk(talk: Talk, seconds: float) -> None:
        started, n = time.monotonic(), 0
        while time.monotonic() - started < seconds:
            await talk.client_says(json.dumps({"type": "steady", "n": n, "pad": "p" * 500}))
            await talk.server_says(json.dumps({"type": "server.steady", "n": n}))
            n += 1
            await asyncio.sleep(0.002)

    async def until_killed() -> tuple[Talk, dict[str, int]]:
        async with Talk.open(upstream, proxy) as session:
            await talk(session, 0.5)
            # Relayed by now: what has come out at the other end. All of it must survive.
            relayed = {
                "client": len(upstream.messages(session.conn_id, "client")),
                "server": len(session.received),
            }
            # Traffic right up to the kill, so that the relay and the writer are busy.
            await talk(session, FLUSH_INTERVAL_MS / 1000 + SCHEDULING_MARGIN_S)
            proxy.process.kill()
            await asyncio.to_thread(proxy.process.wait, HANG_GUARD_S)
            return session, relayed

    session, relayed = asyncio.run(until_killed())
    assert proxy.process.returncode == -signal.SIGKILL
    # The recorder outlives the relay: it writes what it was handed, then exits by itself.
    deadline = time.monotonic() + HANG_GUARD_S
    while not all(exited(pid) for pid in recorders) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(exited(pid) for pid in recorders), "the recorder outlived its relay"

    if db_url.startswith("sqlite"):
        connection = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        try:
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            connection.close()
    kept = stored_events(db_url, session.marker)
    sent = per_direction(expected_events(upstream, session.conn_id))
    # A client frame the relay took in and recorded just before the kill may never have reached
    # the upstream: the client's own log is the reference for that direction.
    sent["client"] = [
        (json.loads(frame)["type"], len(frame.encode() if isinstance(frame, str) else frame))
        for frame in session.client_sent
    ]
    for direction in ("client", "server"):
        # Commits are in order: what survived is the start of what went through, no holes.
        assert kept[direction] == sent[direction][: len(kept[direction])]
        assert len(kept[direction]) >= relayed[direction] > 0, direction
