"""Storage faults: traffic flows unchanged, held records are written later, drops are counted."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from simulator.server import FakeRealtimeServer, run_in_thread
from tests.support.faults import (
    HANG_GUARD_S,
    Talk,
    closed,
    dropped,
    expected_events,
    health,
    in_order,
    metric_sum,
    per_direction,
    recorded,
    sqlite_path,
    wait_until,
)
from tests.support.net import free_port
from tests.support.proxy import ProxyProcess


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


def test_a_burst_the_stuck_writer_cannot_take_waits_on_disk_and_is_recorded_whole(
    upstream: FakeRealtimeServer, run_proxy: Callable[..., ProxyProcess], sqlite_db_url: str
):
    # A client sending a recorded file at once (30 MB of appends) while the writer is stuck:
    # past the relay's 8 MiB in memory the rest waits on disk, and nothing is dropped.
    db = sqlite_path(sqlite_db_url)
    proxy = run_proxy(upstream.base_url, sqlite_db_url)
    other = sqlite3.connect(db, isolation_level=None)
    # Random bytes: what permessage-deflate cannot shrink (the client offers it).
    appends = [
        json.dumps(
            {
                "type": "input_audio_buffer.append",
                "audio": base64.b64encode(os.urandom(75_000)).decode(),
            }
        )
        for _ in range(300)
    ]

    async def session() -> Talk:
        async with Talk.open(upstream, proxy) as talk:
            await talk.client_says('{"type":"before"}')
            await talk.settled()
            wait_until(lambda: len(recorded(db, talk.marker)[1]) >= 3, "first events committed")
            other.execute("BEGIN EXCLUSIVE")  # the writer is stuck on the lock
            try:
                for append in appends:
                    await talk.client_says(append)
                await talk.settled()
                talk.assert_transparent()
                await asyncio.to_thread(
                    wait_until, lambda: "waits on disk" in proxy.log, "the relay spilled"
                )
            finally:
                other.execute("ROLLBACK")
            return talk

    try:
        talk = asyncio.run(session())
    finally:
        other.close()
    _, events = closed(db, talk.marker)  # queued behind everything the session relayed
    assert in_order(events) == per_direction(expected_events(upstream, talk.conn_id))
    assert dropped(proxy) == 0
    assert proxy.stop() == 0
    assert "recorder caught up: at most" in proxy.log
