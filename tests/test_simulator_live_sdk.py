"""GPT-Live on the simulator through the official SDK's ``client.live``, and its audio pacing."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import openai

from simulator import FakeRealtimeServer, Pacing, make_server
from simulator.audio import tone_burst
from tests.support.live import live_connect, send, speak, until
from tests.support.net import free_port
from tests.support.simulator import TIMEOUT, b64

#: One 100 ms PCM16 24 kHz append.
APPEND_BYTES = 4800


async def test_sdk_client_live_starts_streams_and_closes() -> None:
    async with FakeRealtimeServer() as server:
        client = openai.AsyncOpenAI(api_key="sk-test", base_url=server.base_url + "/v1")
        seen: dict[str, Any] = {"in": "", "out": "", "audio": 0, "usage": None}
        async with client.live.connect() as conn:
            await conn.session.start(session={"model": "gpt-live-1"})
            started = await asyncio.wait_for(conn.recv(), TIMEOUT)
            audio = tone_burst(200, 800, 600)
            for at in range(0, len(audio), APPEND_BYTES):
                await conn.session.input_audio.append(audio=b64(audio[at : at + APPEND_BYTES]))
            while seen["usage"] is None:
                event = await asyncio.wait_for(conn.recv(), TIMEOUT)
                if event.type == "session.input_transcript.delta":
                    seen["in"] += event.delta
                elif event.type == "session.output_transcript.delta":
                    seen["out"] += event.delta
                elif event.type == "session.output_audio.delta":
                    seen["audio"] += len(base64.b64decode(event.delta))
                elif event.type == "session.usage.updated":
                    seen["usage"] = event.usage
            await conn.session.close()
            closed = await asyncio.wait_for(conn.recv(), TIMEOUT)
        code, _, _ = await server.wait_closed(1)

    assert started.type == "session.started"
    assert started.session.id.startswith("live_")
    assert started.session.model == "gpt-live-1"
    assert seen["in"] == "Where is my order?"
    assert seen["out"] == "This is a simulated answer from GPT-Live."
    assert seen["audio"] == 12 * APPEND_BYTES
    assert seen["usage"].seconds >= 1
    assert closed.type == "session.closed"
    assert closed.reason == "close_requested"
    assert closed.usage.seconds >= seen["usage"].seconds
    assert code == 1000
    assert server.handshakes[0].path == "/v1/live/sessions"


async def test_live_audio_arrives_no_faster_than_real_time() -> None:
    arrivals: list[tuple[float, float]] = []  # (arrival time, ms of audio in the chunk)
    paced = FakeRealtimeServer(pacing=Pacing.realtime())
    async with paced as server, live_connect(server) as ws:
        await send(ws, {"type": "session.start", "session": {"model": "gpt-live-1"}})
        await until(ws, "session.started")
        await speak(ws, tone_burst(200, 800, 600))
        while True:
            event = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            if event["type"] == "session.output_audio.delta":
                ms = len(base64.b64decode(event["delta"])) / 48
                arrivals.append((time.monotonic(), ms))
            elif event["type"] == "session.usage.updated":
                break

    heard_ms = sum(ms for _, ms in arrivals)
    spread_ms = (arrivals[-1][0] - arrivals[0][0]) * 1000
    # The chunks after the first span the rest of the audio in real time. A late first chunk on a
    # busy machine lets the next ones catch up with the schedule, hence the 150 ms allowance; an
    # unpaced server sends the whole turn within a few milliseconds.
    assert heard_ms == 1200
    assert spread_ms >= heard_ms - arrivals[0][1] - 150, (spread_ms, arrivals)


async def test_the_rtrec_simulate_server_speaks_live_next_to_realtime() -> None:
    async with make_server(port=free_port(), fast=True) as server:
        client = openai.AsyncOpenAI(api_key="sk-test", base_url=server.base_url + "/v1")
        async with client.live.connect() as live:
            await live.session.start(session={"model": "gpt-live-1.1"})
            started = await asyncio.wait_for(live.recv(), TIMEOUT)
        async with client.realtime.connect(model="gpt-realtime") as realtime:
            created = await asyncio.wait_for(realtime.recv(), TIMEOUT)

    assert started.type == "session.started"
    assert started.session.model == "gpt-live-1.1"
    assert created.type == "session.created"
