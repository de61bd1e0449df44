"""A recorder SIGKILLed at random moments under load: recorded + dropped == relayed, exactly."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import func, select
from websockets.asyncio.client import ClientConnection, connect

from simulator.server import FakeRealtimeServer, run_in_thread
from storage.db import make_engine
from storage.models import Event, RealtimeSession, table
from tests.support.faults import HANG_GUARD_S, dropped, wait_until
from tests.support.proxy import ProxyProcess

KEY = "sk-recorder-crash-test-0123456789"
SESSIONS = 8  # two of them compressed (permessage-deflate with context takeover)
MESSAGES = 400  # per session, an audio append each, a response asked for every 25
KILLS = 3
AUDIO = base64.b64encode(bytes(range(256)) * 12).decode()  # 3 KB of pcm16


@pytest.fixture
def upstream() -> Iterator[FakeRealtimeServer]:
    with run_in_thread() as server:
        yield server


def recorder_pid(proxy: ProxyProcess) -> int | None:
    """The running recorder: the proxy's child running `recorder.main`."""
    for task in Path(f"/proc/{proxy.process.pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"recorder.main" in command:
                return int(child)
    return None


def _restarted(proxy: ProxyProcess, killed: int) -> bool:
    return recorder_pid(proxy) not in (None, killed)


def killer(proxy: ProxyProcess, rng: random.Random, stop: threading.Event) -> list[float]:
    """SIGKILL the recorder `KILLS` times at random moments, each once a new one serves."""
    kills = []
    for _ in range(KILLS):
        if stop.wait(rng.uniform(0.3, 1.2)):
            break
        killed = wait_until(lambda: recorder_pid(proxy), "a running recorder")
        os.kill(killed, signal.SIGKILL)
        kills.append(time.monotonic())
        wait_until(partial(_restarted, proxy, killed), "a restarted recorder")
    return kills


async def talk(url: str, compressed: bool) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    compression = "deflate" if compressed else None
    async with connect(url, additional_headers=headers, compression=compression) as ws:
        reader = asyncio.create_task(_drain(ws))
        for n in range(MESSAGES):
            append = {"type": "input_audio_buffer.append", "audio": AUDIO, "n": n}
            await ws.send(json.dumps(append))
            if n % 25 == 24:
                await ws.send(json.dumps({"type": "response.create"}))
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)  # the last response's deltas
        await ws.close()
        await reader


async def _drain(ws: ClientConnection) -> None:
    async for _ in ws:
        pass


def stored(db_url: str) -> tuple[int, int]:
    """(events, sessions still open) in the database."""
    engine = make_engine(db_url)
    with engine.connect() as connection:
        events = connection.execute(select(func.count()).select_from(table(Event))).scalar_one()
        sessions = table(RealtimeSession)
        still_open = connection.execute(
            select(func.count()).select_from(sessions).where(sessions.c.ended_at.is_(None))
        ).scalar_one()
    engine.dispose()
    return events, still_open


def test_recorded_plus_dropped_is_relayed_exactly_across_recorder_kills_under_load(
    upstream: FakeRealtimeServer, run_proxy: Callable[..., ProxyProcess], db_url: str
):
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    proxy = run_proxy(upstream.base_url, db_url)
    url = proxy.base_url.replace("http", "ws", 1) + "/realtime?model=gpt-realtime"
    stop = threading.Event()
    kills: list[float] = []
    thread = threading.Thread(target=lambda: kills.extend(killer(proxy, rng, stop)))
    thread.start()

    async def load() -> None:
        await asyncio.gather(*(talk(url, compressed=n % 4 == 3) for n in range(SESSIONS)))

    started = time.monotonic()
    try:
        asyncio.run(load())
    finally:
        stop.set()
        thread.join(HANG_GUARD_S)
    assert len(kills) == KILLS, f"seed {seed}: killed {len(kills)} time(s)"
    assert kills[-1] - started < MESSAGES * 0.01, "killed after the load: nothing was tested"
    relayed = len(upstream.messages())

    def balance() -> tuple[int, float] | None:
        events, still_open = stored(db_url)
        try:
            drops = dropped(proxy)
        except OSError:  # a recorder starting
            return None
        return (events, drops) if events + drops >= relayed and not still_open else None

    try:
        events, drops = wait_until(balance, "every relayed message recorded or counted")
    except AssertionError:
        events, still_open = stored(db_url)
        pytest.fail(
            f"seed {seed}: {events} recorded + {dropped(proxy)} dropped < {relayed} relayed"
            f" ({still_open} session(s) still open)"
        )
    reasons = {r: dropped(proxy, r) for r in ("deflate_context", "handover_full", "recorder_down")}
    print(f"seed {seed}: {events} recorded + {drops:.0f} dropped == {relayed} relayed", reasons)
    assert events + drops == relayed, f"seed {seed}"
    assert proxy.stop() == 0
    assert stored(db_url) == (events, 0)
