"""Storage and network faults: traffic keeps flowing unchanged, drops are counted, nothing hangs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from simulator.server import REFUSE_UPGRADE_KEY, FakeRealtimeServer, run_in_thread
from tests.conftest import ProxyProcess, proxy_runner
from tests.support.faults import (
    HANG_GUARD_S,
    Talk,
    await_until,
    closed,
    expected_events,
    in_order,
    on_server,
    per_direction,
    recorded,
    sqlite_path,
    wait_until,
)
from tests.support.net import free_port

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


# --------------------------------------------------------------------------- the database


# --------------------------------------------------------------------------- driving a session


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeRealtimeServer]:
    """The fake service for this module, streaming deltas slowly enough to be interrupted."""
    with run_in_thread(delta_interval_s=0.005) as server:
        yield server


@contextlib.contextmanager
def tmpfs(mount_point: Path, size: str) -> Iterator[Path]:
    """A small, size-limited tmpfs mounted for the test and always unmounted."""
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", mount_point], check=True)
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", mount_point], check=False).returncode != 0:
            subprocess.run(["umount", "-l", mount_point], check=False)


def outage_test(
    upstream: FakeRealtimeServer,
    proxy: ProxyProcess,
    db: Path,
    begin: Callable[[], None],
    end: Callable[[], None],
) -> None:
    """Record a session across a database outage: 503 during it, 200 after, nothing lost."""

    async def session() -> Talk:
        async with Talk.open(upstream, proxy) as talk:
            await talk.client_says('{"type":"before.the.outage"}')
            await talk.settled()
            wait_until(lambda: len(recorded(db, talk.marker)[1]) >= 3, "first events committed")
            begin()
            try:
                for n in range(8):
                    await talk.client_says(
                        json.dumps({"type": "during", "n": n, "pad": "x" * 30000})
                    )
                    await talk.server_says(json.dumps({"type": "server.during", "n": n}))
                await talk.server_says(b"\x00binary during the outage")
                await talk.settled()
                talk.assert_transparent()  # traffic flowed while nothing could be stored
                _, reason = await asyncio.to_thread(
                    wait_until, lambda: (h := health(proxy))[0] == 503 and h, "503 on /healthz"
                )
                assert "database unavailable" in reason
            finally:
                end()
            await asyncio.to_thread(wait_until, lambda: health(proxy)[0] == 200, "200 again")
            await talk.client_says('{"type":"after.the.outage"}')
            await talk.settled()
            talk.assert_transparent()
            return talk

    talk = asyncio.run(session())
    (close_code, _closed_by, _ended), events = closed(db, talk.marker)
    assert close_code == 1000
    assert in_order(events) == per_direction(expected_events(upstream, talk.conn_id))
    assert dropped(proxy) == 0
    assert metric_sum(proxy, "openai_realtime_recorder_db_errors_total") >= 1


# --------------------------------------------------------------------------- storage faults


def test_full_disk_holds_the_records_reports_503_and_loses_nothing(
    upstream: FakeRealtimeServer, run_proxy: Callable[..., ProxyProcess], tmp_path: Path
):
    with tmpfs(tmp_path / "disk", "4m") as disk:
        db = disk / "rtrec.db"
        proxy = run_proxy(upstream.base_url, f"sqlite:///{db}")
        filler = disk / "filler"

        def fill() -> None:
            with contextlib.suppress(OSError), filler.open("wb") as out:  # ENOSPC at close, too
                while True:
                    out.write(b"\0" * 65536)
                    out.flush()

        outage_test(upstream, proxy, db, fill, filler.unlink)
        assert proxy.stop() == 0


def test_database_turned_read_only_reports_503_and_resumes(
    upstream: FakeRealtimeServer, run_proxy: Callable[..., ProxyProcess], tmp_path: Path
):
    db = tmp_path / "rtrec.db"
    proxy = run_proxy(upstream.base_url, f"sqlite:///{db}")
    # Root ignores permission bits; the immutable attribute refuses even root's writes.
    files = [str(db), f"{db}-wal"]

    def read_only() -> None:
        subprocess.run(["chattr", "+i", *files], check=True)

    def writable() -> None:
        subprocess.run(["chattr", "-i", *files], check=True)

    try:
        outage_test(upstream, proxy, db, read_only, writable)
    finally:
        subprocess.run(["chattr", "-i", *files], check=False)
    assert proxy.stop() == 0


def test_database_locked_by_another_writer_reports_503_and_resumes(
    upstream: FakeRealtimeServer, run_proxy: Callable[..., ProxyProcess], sqlite_db_url: str
):
    db = sqlite_path(sqlite_db_url)
    proxy = run_proxy(upstream.base_url, sqlite_db_url)
    other = sqlite3.connect(db, isolation_level=None)

    def lock() -> None:
        other.execute("BEGIN EXCLUSIVE")

    def unlock() -> None:
        other.execute("ROLLBACK")

    try:
        outage_test(upstream, proxy, db, lock, unlock)
    finally:
        other.close()
    assert proxy.stop() == 0


def test_read_only_filesystem_at_start_is_one_clear_error(tmp_path: Path):
    with tmpfs(tmp_path / "ro", "1m") as ro:
        subprocess.run(["mount", "-o", "remount,ro", ro], check=True)
        result = subprocess.run(
            [
                *(
                    sys.executable,
                    "-m",
                    "rtrec.cli",
                    "proxy",
                    "--db",
                    f"sqlite:///{ro / 'rtrec.db'}",
                ),
                *("--listen-port", str(free_port()), "--metrics-port", "0"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()
    assert "Read-only file system" in line
    assert str(ro / "rtrec.db") in line


def test_slow_writer_with_a_tiny_queue_drops_and_counts_exactly(
    upstream: FakeRealtimeServer, run_proxy: Callable[..., ProxyProcess], sqlite_db_url: str
):
    db = sqlite_path(sqlite_db_url)
    proxy = run_proxy(upstream.base_url, sqlite_db_url, "--queue-size", "3")
    other = sqlite3.connect(db, isolation_level=None)

    async def session() -> Talk:
        async with Talk.open(upstream, proxy) as talk:
            await talk.client_says('{"type":"before"}')
            await talk.settled()
            wait_until(lambda: len(recorded(db, talk.marker)[1]) >= 3, "first events committed")
            other.execute("BEGIN EXCLUSIVE")  # the writer now lags behind, stuck on the lock
            try:
                # Until the queue is full the writer may still take some; after that, every
                # message is dropped, and counted.
                deadline = time.monotonic() + HANG_GUARD_S
                while metric_sum(proxy, "openai_realtime_recorder_queue_depth") < 3:
                    assert time.monotonic() < deadline, "the queue never filled: writer not stuck"
                    await talk.client_says('{"type":"filling.the.queue"}')
                    await talk.settled()
                for n in range(20):
                    await talk.client_says(json.dumps({"type": "overflow", "n": n}))
                    await talk.server_says(json.dumps({"type": "server.overflow", "n": n}))
                await talk.settled()
                talk.assert_transparent()
                # 20 client messages, the service's 20 answers and 20 messages of its own.
                assert dropped(proxy, "queue_full") >= 60
            finally:
                other.execute("ROLLBACK")
            await asyncio.to_thread(
                wait_until,
                lambda: metric_sum(proxy, "openai_realtime_recorder_queue_depth") == 0,
                "the queue drained",
            )
            return talk

    try:
        talk = asyncio.run(session())
    finally:
        other.close()
    _, events = closed(db, talk.marker)
    sent = expected_events(upstream, talk.conn_id)
    assert len(events) + dropped(proxy) == len(sent)
    assert dropped(proxy) == dropped(proxy, "queue_full")
    # What was kept is what was relayed, minus the dropped messages, in order.
    for direction, kept in in_order(events).items():
        relayed = iter(per_direction(sent)[direction])
        assert all(event in relayed for event in kept)
    assert proxy.stop() == 0


# --------------------------------------------------------------------------- network faults


@pytest.fixture(scope="module")
def shared_proxy(
    upstream: FakeRealtimeServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ProxyProcess, Path]]:
    """One proxy for the network faults, which must leave it healthy for the next test."""
    directory = tmp_path_factory.mktemp("network")
    db = directory / "rtrec.db"
    with proxy_runner(directory) as run:
        yield run(upstream.base_url, f"sqlite:///{db}"), db


def kill_tcp(local_port: int) -> None:
    """Destroy the established sockets bound to `local_port`: the peer gets a reset, no close."""
    subprocess.run(
        ["ss", "-K", "-t", "state", "established", "src", f"127.0.0.1:{local_port}"],
        check=True,
        capture_output=True,
    )


def test_upstream_dying_without_a_close_frame_ends_the_session_with_1006(
    upstream: FakeRealtimeServer, shared_proxy: tuple[ProxyProcess, Path]
):
    proxy, db = shared_proxy

    async def session() -> Talk:
        async with Talk.open(upstream, proxy) as talk:
            await talk.client_says('{"type":"hello"}')
            await talk.server_says('{"type":"server.hello"}')
            await talk.settled()
            kill_tcp(upstream.port)  # the service's side of this (only) connection
            await asyncio.wait_for(talk.collector, HANG_GUARD_S)  # the client is not left hanging
            talk.assert_transparent()
            return talk

    talk = asyncio.run(session())
    (close_code, closed_by, _), events = closed(db, talk.marker)
    assert (close_code, closed_by) == (1006, "server")
    assert in_order(events) == per_direction(expected_events(upstream, talk.conn_id))
    assert health(proxy)[0] == 200


def test_client_vanishing_mid_response_ends_the_session_with_1006(
    upstream: FakeRealtimeServer, shared_proxy: tuple[ProxyProcess, Path]
):
    proxy, db = shared_proxy

    async def session() -> Talk:
        async with Talk.open(upstream, proxy) as talk:
            await talk.client_says(
                json.dumps(
                    {
                        "type": "conversation.item.create",
                        "item": {
                            "type": "message",
                            "role": "user",
                            "content": [{"type": "input_text", "text": "Tell me a long story."}],
                        },
                    }
                )
            )
            await talk.client_says('{"type":"response.create"}')
            await await_until(
                lambda: any(
                    b'.delta"' in (m if isinstance(m, bytes) else m.encode()) for m in talk.received
                ),
                "the response started streaming",
            )
            kill_tcp(talk.ws.local_address[1])  # the client's socket is gone, mid-stream
            await asyncio.wait_for(talk.collector, HANG_GUARD_S)
            return talk

    talk = asyncio.run(session())
    server_close = asyncio.run(on_server(upstream, lambda: upstream.wait_closed(talk.conn_id, 30)))
    assert server_close[0] is not None  # the proxy closed the upstream side too
    (close_code, closed_by, _), events = closed(db, talk.marker)
    assert (close_code, closed_by) == (1006, "client")
    recorded_by_direction = in_order(events)
    sent = per_direction(expected_events(upstream, talk.conn_id))
    assert recorded_by_direction["client"] == sent["client"]
    # The proxy records what reached it; anything the service sent after the proxy gave up on
    # the session never arrived. What was recorded is exactly the start of what was sent.
    server_events = recorded_by_direction["server"]
    assert server_events == sent["server"][: len(server_events)]
    assert len(server_events) >= len(talk.received)
    assert health(proxy)[0] == 200


def test_refused_upgrade_reaches_the_client_unchanged_and_the_proxy_carries_on(
    upstream: FakeRealtimeServer, shared_proxy: tuple[ProxyProcess, Path]
):
    proxy, db = shared_proxy
    failures_before = metric_sum(proxy, "openai_realtime_upgrade_failures_total", status="403")

    marker = uuid.uuid4().hex

    async def refused() -> InvalidStatus:
        url = f"ws://127.0.0.1:{proxy.port}/v1/realtime?model=gpt-realtime&trial={marker}"
        with pytest.raises(InvalidStatus) as refusal:
            async with connect(url, additional_headers={"api-key": REFUSE_UPGRADE_KEY}):
                pass
        return refusal.value

    refusal = asyncio.run(refused())
    assert refusal.response.status_code == 403
    assert json.loads(refusal.response.body)["error"]["code"] == "upgrade_refused"
    assert upstream.handshakes[-1].status == 403
    failures = metric_sum(proxy, "openai_realtime_upgrade_failures_total", status="403")
    assert failures == failures_before + 1
    assert recorded(db, marker) == (None, [])  # no session for a refused upgrade

    async def next_session() -> Talk:
        async with Talk.open(upstream, proxy) as talk:
            await talk.client_says('{"type":"still.working"}')
            await talk.settled()
            talk.assert_transparent()
            return talk

    talk = asyncio.run(next_session())
    _, events = closed(db, talk.marker)
    assert in_order(events) == per_direction(expected_events(upstream, talk.conn_id))
