"""Stopping the proxy: SIGTERM and SIGINT flush every queued event; SIGKILL loses only the last."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator

import pytest

from simulator.server import FakeRealtimeServer, run_in_thread
from tests.conftest import ProxyProcess
from tests.test_reliability_faults import (
    HANG_GUARD_S,
    Talk,
    expected_events,
    in_order,
    per_direction,
    recorded,
    sqlite_path,
)

FLUSH_INTERVAL_MS = 100
# How long after its flush interval an event may still be uncommitted when the process dies:
# the commit itself and a busy machine. Generous on purpose; it only bounds what we accept.
MARGIN_S = 1.0


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


def test_sigkill_keeps_the_database_intact_and_loses_only_the_last_flush_interval(
    upstream: FakeRealtimeServer, run_proxy: Callable[..., ProxyProcess], sqlite_db_url: str
):
    db = sqlite_path(sqlite_db_url)
    proxy = run_proxy(
        upstream.base_url, sqlite_db_url, "--flush-interval-ms", str(FLUSH_INTERVAL_MS)
    )
    keep_going_s = FLUSH_INTERVAL_MS / 1000 + MARGIN_S

    async def until_killed() -> tuple[Talk, float]:
        async with Talk.open(upstream, proxy) as talk:
            started = time.monotonic()
            n = 0
            # Traffic right up to the kill, so that the writer is busy when it happens.
            while time.monotonic() - started < keep_going_s + 0.4:
                await talk.client_says(json.dumps({"type": "steady", "n": n, "pad": "p" * 500}))
                await talk.server_says(json.dumps({"type": "server.steady", "n": n}))
                n += 1
                await asyncio.sleep(0.002)
            killed_at = time.time()
            proxy.process.kill()
            await asyncio.to_thread(proxy.process.wait, HANG_GUARD_S)
            return talk, killed_at

    talk, killed_at = asyncio.run(until_killed())
    assert proxy.process.returncode == -signal.SIGKILL

    connection = sqlite3.connect(db)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        connection.close()
    _, events = recorded(db, talk.marker)
    kept = in_order(events)
    logged = upstream.messages(talk.conn_id)
    sent = per_direction(expected_events(upstream, talk.conn_id))
    for direction in ("client", "server"):
        # Commits are in order: what survived is the start of what went through, no holes.
        assert kept[direction] == sent[direction][: len(kept[direction])]
        old_enough = [
            m for m in logged if m.direction == direction and m.ts < killed_at - keep_going_s
        ]
        assert len(kept[direction]) >= len(old_enough) > 0, direction
