"""GPT-Live on the simulator: what it sends validates against the SDK's types, in every scenario."""

from __future__ import annotations

import base64
from typing import Any

import pydantic
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from simulator import FakeRealtimeServer
from simulator.audio import AudioFormat, tone_burst
from simulator.call_server import CallServer
from simulator.live_session import LIVE_AT_CAPACITY_MODEL
from tests.support import calls
from tests.support.live import (
    LIVE_SIDEBAND,
    Sideband,
    live_connect,
    send,
    speak,
    until,
    validate_live_event,
    validate_live_events,
)
from tests.support.simulator import b64

JSON = dict[str, Any]
#: Every event type the simulator sends on a primary Live socket (the sideband-only reflected
#: input audio and transport events, and ``info``, it never sends).
EVERY_SENT_TYPE = {
    "session.started",
    "session.updated",
    "session.input_audio.muted",
    "session.input_audio.unmuted",
    "session.output_audio.fixture.playing",
    "session.output_audio.fixture.played",
    "session.instructions.appended",
    "session.thinking.appended",
    "session.commentary.appended",
    "session.output_audio.delta",
    "session.input_transcript.delta",
    "session.output_transcript.delta",
    "session.delegation.created",
    "decision.event",
    "decision.item.created",
    "decision.item.deleted",
    "response.event",
    "session.usage.updated",
    "session.closed",
    "error",
}
#: Every event type a GPT-Live SIP call's sideband receives in :func:`sip_call_sideband`.
EVERY_SIDEBAND_TYPE = {
    "session.started",
    "session.input_audio.append",
    "session.output_audio.delta",
    "session.input_transcript.delta",
    "session.output_transcript.delta",
    "session.usage.updated",
    "transport.dtmf.received",
    "transport.dtmf.sent",
    "error",
    "session.closed",
}
PREDICATE = {"type": "predicate", "name": "upset", "instructions": "Is the user upset?"}
CHOICE = {
    "type": "choice",
    "name": "intent",
    "instructions": "What does the user want?",
    "choices": [{"value": "refund"}, {"value": "status"}],
}
SCORE = {
    "type": "score",
    "name": "urgency",
    "instructions": "How urgent is it?",
    "levels": [{"label": "low"}, {"label": "high"}],
}
RESPONSES_DELEGATION = {"type": "responses", "responses": {"model": "gpt-5.4"}}
DECISIONS_DELEGATION = {
    "type": "decisions",
    "decisions": {"model": "gpt-5-mini", "questions": [CHOICE, SCORE]},
}


def trigger(event_type: str) -> JSON:
    return {"type": "decisions", "event_type": event_type, "decisions": {"questions": [PREDICATE]}}


def live_format(kind: str, rate: int) -> JSON:
    return {"format": {"type": kind, "rate": rate}}


async def start(ws: ClientConnection, **session: Any) -> JSON:
    await send(ws, {"type": "session.start", "event_id": "start-1", "session": session})
    return (await until(ws, "session.started"))[-1]


async def one_turn(ws: ClientConnection, fmt: AudioFormat = "pcm16") -> list[JSON]:
    """Say one sentence (a tone the VAD hears) and take everything up to the turn's usage."""
    await speak(ws, tone_burst(200, 800, 600, fmt), fmt)
    return await until(ws, "session.usage.updated")


async def close(ws: ClientConnection) -> JSON:
    await send(ws, {"type": "session.close", "event_id": "close-1"})
    closed = (await until(ws, "session.closed"))[-1]
    with pytest.raises(ConnectionClosed):
        await ws.recv()
    return closed


def of_type(events: list[JSON], kind: str) -> list[JSON]:
    return [e for e in events if e["type"] == kind]


# --------------------------------------------------------------------------- scenarios
async def responses_session(server: FakeRealtimeServer) -> None:
    """A delegating session with triggers, every context command, a fixture, updates and
    errors; conversation audio at PCM16 24 kHz."""
    async with live_connect(server) as ws:
        started = await start(
            ws,
            model="gpt-live-1",
            audio=live_format("audio/pcm", 24_000),
            delegation=RESPONSES_DELEGATION,
            triggers=[
                trigger("session.input_transcript.delta"),
                trigger("session.output_transcript.delta"),
            ],
        )
        assert started["client_event_id"] == "start-1"
        turn = await one_turn(ws)
        assert len(of_type(turn, "decision.event")) == 2  # one per trigger
        assert len(of_type(turn, "response.event")) > 2
        for command in ("mute", "unmute"):
            await send(ws, {"type": f"session.input_audio.{command}", "event_id": command})
            ack = (await until(ws, f"session.input_audio.{command}d"))[-1]
            assert ack["client_event_id"] == command
        for kind in ("instructions", "thinking", "commentary"):
            append = {"content": "Be brief.", "delegation_id": None}
            await send(ws, {"type": f"session.{kind}.append", **append})
            await until(ws, f"session.{kind}.appended")
        fixture = b64(tone_burst(0, 200, 0))
        await send(ws, {"type": "session.output_audio.fixture.play", "audio": fixture})
        await until(ws, *(f"session.output_audio.fixture.{k}" for k in ("playing", "played")))
        await send(ws, {"type": "session.update", "session": {"triggers": []}})
        updated = (await until(ws, "session.updated"))[-1]
        assert updated["session"]["triggers"] == []
        await send(ws, {"type": "response.create"})
        assert of_type(await until(ws, "session.delegation.created"), "session.delegation.created")
        await close(ws)


async def decisions_session(server: FakeRealtimeServer) -> None:
    """A session delegating to Decisions, its audio in G.711 mu-law, with a decision.create."""
    async with live_connect(server) as ws:
        await start(
            ws,
            model="gpt-live-1.1",
            audio=live_format("audio/pcmu", 8_000),
            delegation=DECISIONS_DELEGATION,
        )
        turn = await one_turn(ws, "g711_ulaw")
        created = of_type(turn, "session.delegation.created")[0]["delegation"]
        decided = of_type(turn, "decision.event")[0]
        assert created["target"] == "decisions"
        assert decided["delegation_id"] == created["id"]
        assert decided["event"]["decision"]["usage"]["total_tokens"] > 0
        item = {"type": "message", "role": "user", "content": "I want my money back."}
        await send(ws, {"type": "decision.item.create", "event_id": "item-1", "item": item})
        stored = (await until(ws, "decision.item.created"))[-1]["item"]
        await send(ws, {"type": "decision.create", "event_id": "decide-1"})
        requested = (await until(ws, "decision.event"))[-1]
        assert (requested["delegation_id"], requested["trigger_id"]) == (None, None)
        await send(ws, {"type": "decision.item.delete", "item_id": stored["id"]})
        assert (await until(ws, "decision.item.deleted"))[-1]["item_id"] == stored["id"]
        await close(ws)


async def errors_session(server: FakeRealtimeServer) -> list[JSON]:
    """Client mistakes after startup: each gets an ``error`` and the session goes on."""
    async with live_connect(server) as ws:
        await start(ws, model="gpt-live-1")
        mistakes: list[JSON] = [
            {"type": "session.bogus", "event_id": "bad-1"},
            {"type": "session.update", "session": {"instructions": "Be loud."}},
            {"type": "session.update", "session": {"delegation": RESPONSES_DELEGATION}},
            {"type": "session.start", "session": {"model": "gpt-live-1"}},
            {"type": "session.input_audio.append", "audio": "not base64!"},
        ]
        errors = []
        for mistake in mistakes:
            await send(ws, mistake)
            errors.append((await until(ws, "error"))[-1]["error"])
        await close(ws)
    return errors


async def refused_sessions(server: FakeRealtimeServer) -> list[tuple[int | None, JSON]]:
    """A first frame that is not ``session.start``, and a start the service cannot admit."""
    out = []
    first_frames: list[JSON] = [
        {"type": "session.input_audio.append", "audio": b64(bytes(4800))},
        {"type": "session.start", "session": {"model": LIVE_AT_CAPACITY_MODEL}},
    ]
    for first in first_frames:
        async with live_connect(server) as ws:
            await send(ws, first)
            error = (await until(ws, "error"))[-1]
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            out.append((ws.close_code, error))
    return out


async def sip_call_sideband(server: CallServer) -> Sideband:
    """A GPT-Live SIP call watched from ringing to ``session.close`` by a sideband that sends
    DTMF (a good key and a bad one)."""
    call = server.registry.ring_sip("live")
    async with Sideband(server.base_url, call.call_id) as sideband:
        await calls.until(lambda: call.sidebands)
        await calls.sdk_client(server).live.sessions.accept(
            call.call_id, session={"type": "live", "model": "gpt-live-1"}
        )
        await sideband.wait_for("transport.dtmf.received")
        await sideband.wait_for("session.usage.updated")
        await sideband.send({"type": "transport.dtmf.send", "event": "5", "event_id": "key-1"})
        await sideband.send({"type": "transport.dtmf.send", "event": "x", "event_id": "key-2"})
        await sideband.wait_for("error")
        await sideband.send({"type": "session.close", "event_id": "bye"})
        assert await sideband.ended() == 1000
    assert call.status == "ended"
    return sideband


# --------------------------------------------------------------------------- tests
async def test_every_event_the_simulator_sends_validates_against_the_sdk() -> None:
    async with FakeRealtimeServer() as server:
        await responses_session(server)
        await decisions_session(server)
        await errors_session(server)
        await refused_sessions(server)
        for conn_id in (1, 2, 3, 4, 5):
            await server.wait_closed(conn_id)
        sent = [validate_live_events(server, conn_id) for conn_id in (1, 2, 3, 4, 5)]

    assert {event["type"] for events in sent for event in events} == EVERY_SENT_TYPE


async def test_every_event_a_call_sideband_receives_validates_against_the_sdk() -> None:
    async with CallServer() as server:
        sideband = await sip_call_sideband(server)

    assert sideband.validate() == EVERY_SIDEBAND_TYPE
    assert sideband.events[0]["session"]["id"] == sideband.url.split("/")[-2]
    (sent,) = sideband.of_type("transport.dtmf.sent")
    assert (sent["event"], sent["client_event_id"]) == ("5", "key-1")
    (error,) = sideband.of_type("error")
    assert (error["error"]["param"], error["client_event_id"]) == ("event", "key-2")
    deltas = sideband.of_type("session.output_audio.delta")
    assert all(
        d["end_ms"] - d["start_ms"] == len(base64.b64decode(d["delta"])) // 48 for d in deltas
    )
    (closed,) = sideband.of_type("session.closed")
    assert (closed["reason"], closed["client_event_id"]) == ("close_requested", "bye")


@pytest.mark.parametrize(
    "wrong",
    [
        {"type": "session.usage.updated", "event_id": "e", "usage": {"secs": 3}},
        {"type": "session.closed", "event_id": "e", "reason": "bye", "usage": {"seconds": 1}},
        {"type": "session.input_transcript.delta", "event_id": "e", "delta": "hi", "end_ms": 1},
        {"type": "session.input_audio.muted", "event_id": "e", "muted": True},
        {"type": "response.event", "event_id": "e", "event": {"type": "response.completed"}},
    ],
)
def test_the_validation_rejects_a_wrong_field(wrong: JSON) -> None:
    with pytest.raises((AssertionError, pydantic.ValidationError)):
        validate_live_event(wrong)


@pytest.mark.parametrize(
    "wrong",
    [
        {"type": "session.input_audio.append", "audio": "AA==", "start_ms": 0},
        {"type": "session.output_audio.delta", "delta": "AA==", "start_ms": 0.5, "end_ms": 1},
        {"type": "transport.dtmf.sent", "event": "5"},
        {"type": "session.paused", "event_id": "e", "reason": "idle"},
    ],
)
def test_the_sideband_validation_rejects_a_wrong_field(wrong: JSON) -> None:
    with pytest.raises((AssertionError, pydantic.ValidationError)):
        validate_live_event(wrong, LIVE_SIDEBAND)


async def test_client_mistakes_get_invalid_request_errors_naming_the_param() -> None:
    async with FakeRealtimeServer() as server:
        errors = await errors_session(server)

    assert {error["type"] for error in errors} == {"invalid_request_error"}
    assert [(e["code"], e["param"]) for e in errors] == [
        ("invalid_value", "type"),
        ("unknown_parameter", "session.instructions"),
        ("invalid_value", "session.delegation.type"),
        ("session_already_started", None),
        ("invalid_value", "audio"),
    ]
    assert errors[0]["client_event_id"] == "bad-1"


async def test_a_first_frame_other_than_start_and_an_admission_refusal_close_the_socket() -> None:
    async with FakeRealtimeServer() as server:
        (not_start_code, not_start), (busy_code, busy) = await refused_sessions(server)

    assert not_start["error"]["code"] == "session_not_started"
    assert not_start["error"]["type"] == "invalid_request_error"
    assert not_start_code == 1008
    assert busy["error"]["type"] == "rate_limit_error"
    assert busy_code == 1013
    assert [h.status for h in server.handshakes] == [101, 101]


async def test_missing_key_gets_a_live_error_then_close_3000() -> None:
    async with FakeRealtimeServer() as server:
        async with live_connect(server, headers={}) as ws:
            error = (await until(ws, "error"))[-1]
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        validate_live_events(server, 1)

    assert error["error"]["code"] == "missing_bearer"
    assert ws.close_code == 3000


@pytest.mark.parametrize(
    ("audio", "fmt", "chunk_bytes"),
    [
        (live_format("audio/pcm", 24_000), "pcm16", 4800),
        (live_format("audio/pcm", 16_000), "pcm16_16k", 3200),
        (live_format("audio/pcma", 8_000), "g711_alaw", 800),
    ],
)
async def test_audio_format_sets_both_directions_on_the_azure_path(
    audio: JSON, fmt: AudioFormat, chunk_bytes: int
) -> None:
    azure = "/openai/v1/live/sessions"
    async with FakeRealtimeServer() as server, live_connect(server, azure, {"api-key": "k"}) as ws:
        started = await start(ws, model="gpt-live-1", audio=audio)
        turn = await one_turn(ws, fmt)
        await close(ws)

    chunks = [base64.b64decode(e["delta"]) for e in of_type(turn, "session.output_audio.delta")]
    said = "".join(e["delta"] for e in of_type(turn, "session.input_transcript.delta"))
    assert started["session"]["audio"]["format"] == audio["format"]
    assert said == "Where is my order?"
    assert {len(chunk) for chunk in chunks} == {chunk_bytes}
