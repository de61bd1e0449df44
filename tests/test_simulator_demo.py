"""The demo scenarios, tool calls, pacing and `serve_forever` against the simulator directly."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
from typing import Any

import openai
import pytest

from simulator import FakeRealtimeServer
from simulator.demo import DEMO_SCENARIOS, ScenarioResult, run_demo
from simulator.pacing import Pacing
from simulator.scenarios import WEATHER_TOOL
from simulator.serve import serve_forever
from tests.support.live import validate_live_events
from tests.support.net import free_port
from tests.support.simulator import (
    BETA_MODEL,
    Recorder,
    beta_client,
    done_usages,
    finish,
    ga_client,
    validate_server_events,
)

JSON = dict[str, Any]
SCENARIO_NAMES = [
    "text",
    "voice",
    "barge_in",
    "tool_call",
    "transcription",
    "errors",
    "beta",
    "live_voice",
    "live_delegation",
]
#: Slow enough for a cancel or a barge-in to land mid-answer, still well under a second a turn.
INTERRUPTIBLE_S = 0.02


def is_beta(server: FakeRealtimeServer, conn_id: int) -> bool:
    handshake = next(h for h in server.handshakes if h.conn_id == conn_id)
    return handshake.headers.get("openai-beta") == "realtime=v1"


def collapsed(events: list[JSON]) -> list[str]:
    """Event types with runs of the same type (deltas) collapsed into one."""
    types = [e["type"] for e in events]
    return [t for i, t in enumerate(types) if i == 0 or types[i - 1] != t]


def by_session_id(server: FakeRealtimeServer) -> dict[str, int]:
    """``session.created`` id -> the simulator's connection id."""
    return {
        e["session"]["id"]: h.conn_id
        for h in server.handshakes
        for e in server.events(h.conn_id, "server")[:1]
    }


def check_realtime_session(
    server: FakeRealtimeServer, conn_id: int, result: ScenarioResult
) -> None:
    """A Realtime session's events validate, with one usage per response the client saw."""
    beta = is_beta(server, conn_id)
    assert beta is (result.api == "beta")
    sent = validate_server_events(server, conn_id, beta=beta)
    usages = done_usages(sent, beta=beta)
    assert len(usages) == len(result.responses)
    received = [m.event for m in server.messages(conn_id, "client")]
    appended = [e for e in received if e and e["type"] == "input_audio_buffer.append"]
    assert bool(appended) is (result.user_audio_bytes > 0)


def check_live_session(server: FakeRealtimeServer, conn_id: int, result: ScenarioResult) -> None:
    """A GPT-Live session's events validate and end in ``session.closed``, as its client saw."""
    sent = validate_live_events(server, conn_id)
    assert sent[0]["session"]["model"] == result.model
    assert sent[-1]["type"] == "session.closed"
    heard = sum(
        len(base64.b64decode(e["delta"])) for e in sent if e["type"] == "session.output_audio.delta"
    )
    assert heard == result.assistant_audio_bytes > 0


async def test_every_scenario_sends_only_valid_events_with_consistent_usage() -> None:
    async with FakeRealtimeServer(delta_interval_s=INTERRUPTIBLE_S) as server:
        results = await run_demo(server.base_url + "/v1", concurrency=len(DEMO_SCENARIOS))
        conn_ids = by_session_id(server)
        for conn_id in conn_ids.values():
            await server.wait_closed(conn_id)

    assert [r.name for r in results] == SCENARIO_NAMES
    for result in results:
        assert result.as_expected, result.summary()
        conn_id = conn_ids[result.openai_session_id]
        if result.api == "live":
            check_live_session(server, conn_id, result)
        else:
            check_realtime_session(server, conn_id, result)
    by_name = {r.name: r for r in results}
    assert by_name["live_voice"].audio_both_ways
    assert by_name["live_delegation"].statuses == [("completed", None)]
    assert by_name["voice"].audio_both_ways
    assert by_name["beta"].audio_both_ways
    assert by_name["barge_in"].audio_both_ways
    assert by_name["transcription"].transcriptions == 2
    assert by_name["voice"].transcriptions == by_name["beta"].transcriptions == 1
    assert by_name["tool_call"].function_calls == ["get_weather"]


async def test_load_mode_cycles_scenarios_with_bounded_concurrency() -> None:
    lines: list[str] = []
    async with FakeRealtimeServer() as server:
        results = await run_demo(
            server.base_url + "/v1", sessions=10, concurrency=3, progress=lines.append
        )
        for handshake in server.handshakes:
            await server.wait_closed(handshake.conn_id)

    assert [r.name for r in results] == (SCENARIO_NAMES * 2)[:10]
    assert len(lines) == 10
    assert len({r.openai_session_id for r in results}) == 10
    spans = [
        (min(m.ts for m in msgs), max(m.ts for m in msgs))
        for h in server.handshakes
        if (msgs := server.messages(h.conn_id))
    ]
    overlap = max(sum(1 for s, e in spans if s <= t <= e) for t, _ in spans)
    assert 1 <= overlap <= 3


async def test_tool_call_streams_function_arguments_then_answers_the_output() -> None:
    async with FakeRealtimeServer() as server:
        results = await run_demo(server.base_url + "/v1", sessions=4)
        conn_id = by_session_id(server)[results[3].openai_session_id]
        await server.wait_closed(conn_id)
        events = validate_server_events(server, conn_id, beta=False)

    first_done = next(e for e in events if e["type"] == "response.done")
    start = next(i for i, e in enumerate(events) if e["type"] == "response.created")
    assert collapsed(events[start : events.index(first_done) + 2]) == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    deltas = [e for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert "".join(d["delta"] for d in deltas) == done["arguments"]
    assert json.loads(done["arguments"]) == {"city": "example", "unit": "celsius"}
    assert done["name"] == "get_weather"
    (call,) = first_done["response"]["output"]
    assert (call["type"], call["call_id"], call["status"]) == (
        "function_call",
        done["call_id"],
        "completed",
    )
    usage = first_done["response"]["usage"]
    assert usage["output_token_details"]["text_tokens"] == -(-len(done["arguments"]) // 4)
    answer = [e for e in events if e["type"] == "response.done"][1]["response"]
    assert answer["output"][0]["type"] == "message"
    assert answer["usage"]["input_tokens"] > usage["input_tokens"]


async def test_beta_tool_call_and_tool_choice_none() -> None:
    async with FakeRealtimeServer() as server:
        async with beta_client(server).beta.realtime.connect(model=BETA_MODEL) as conn:
            rec = Recorder(conn)
            await rec.recv()
            session = {"modalities": ["text"], "tools": [WEATHER_TOOL], "turn_detection": None}
            await rec.send({"type": "session.update", "session": session})
            await rec.recv()
            await rec.send({"type": "response.create"})
            called = await rec.until("rate_limits.updated")
            await rec.send({"type": "response.create", "response": {"tool_choice": "none"}})
            answered = await rec.until("rate_limits.updated")
        events = await finish(server, rec, 1, beta=True)

    assert collapsed([{"type": e.type} for e in called]) == [
        "response.created",
        "response.output_item.added",
        "conversation.item.created",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    assert called[-2].response.output[0].object == "realtime.item"
    assert answered[1].item.type == "message"
    assert len(done_usages(events, beta=True)) == 2


async def test_realtime_pacing_streams_audio_at_one_to_two_times_real_time() -> None:
    async with FakeRealtimeServer(pacing=Pacing.realtime()) as server:
        async with ga_client(server).realtime.connect(model="gpt-realtime") as conn:
            rec = Recorder(conn)
            await rec.recv()
            await rec.send({"type": "response.create"})
            await rec.until("rate_limits.updated")
        await server.wait_closed(1)
    sent = server.messages(1, "server")
    at = {m.event["type"]: m.ts for m in reversed(sent) if m.event}
    audio = [m.ts for m in sent if m.event and m.event["type"] == "response.output_audio.delta"]

    # Lower bounds are the pacing; the upper ones only catch gross errors on a loaded machine.
    assert 0.3 <= audio[0] - at["response.created"] <= 1.5
    # 1 s of audio in ten 100 ms chunks at 1.5x real time: 9 gaps of 66.7 ms.
    assert 0.55 <= audio[-1] - audio[0] <= 2.0
    assert at["rate_limits.updated"] - at["response.done"] >= 0.03


async def test_fast_pacing_by_default_streams_faster_than_real_time() -> None:
    async with FakeRealtimeServer() as server:
        async with ga_client(server).realtime.connect(model="gpt-realtime") as conn:
            rec = Recorder(conn)
            await rec.recv()
            await rec.send({"type": "response.create"})
            await rec.until("rate_limits.updated")
        await server.wait_closed(1)
    sent = [m for m in server.messages(1, "server") if m.event]

    # A whole 1 s spoken answer, in less time than realtime pacing's minimum (0.35 + 0.6 s).
    assert sent[-1].ts - sent[1].ts < 0.9


async def test_serve_forever_logs_the_client_line_serves_and_stops_on_sigint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    caplog.set_level(logging.INFO, logger="simulator.serve")
    task = asyncio.create_task(serve_forever("127.0.0.1", port, fast=True))
    while not [r for r in caplog.records if r.name == "simulator.serve"]:
        await asyncio.sleep(0.01)
    client = openai.AsyncOpenAI(api_key="sk-user", base_url=f"http://127.0.0.1:{port}/v1")
    async with client.realtime.connect(model="gpt-realtime") as conn:
        assert (await conn.recv()).type == "session.created"
        await conn.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
        while (event := await asyncio.wait_for(conn.recv(), 5)).type != "response.done":
            pass
    os.kill(os.getpid(), signal.SIGINT)
    await asyncio.wait_for(task, 5)

    assert event.response.status == "completed"
    (record,) = [r for r in caplog.records if r.name == "simulator.serve"]
    assert f"OPENAI_BASE_URL=http://127.0.0.1:{port}/v1" in record.getMessage()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)


async def test_serve_forever_raises_oserror_for_a_taken_port_and_stops_when_cancelled() -> None:
    port = free_port()
    task = asyncio.create_task(serve_forever("127.0.0.1", port, fast=True, handle_signals=False))
    await asyncio.sleep(0.2)
    with pytest.raises(OSError, match=r"(?i)address already in use"):
        await serve_forever("127.0.0.1", port, fast=True, handle_signals=False)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
