"""GPT-Live's WebRTC and SIP calls run the real Live session: JSON create, RTP both ways, the
data channel, /attach sidebands with reflected audio, DTMF, standby and hangup."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import openai
import pytest
import websockets

from simulator.call_server import CallServer
from simulator.live_call import PCM16_BYTES_PER_MS
from simulator.serve import make_server
from tests.support.calls import (
    TWO_TURNS,
    ClientPeer,
    WebhookReceiver,
    read_sideband,
    ring,
    sdk_client,
    until,
)
from tests.support.live import Sideband, validate_live_event
from tests.support.net import free_port

JSON = dict[str, Any]


@pytest.fixture
async def live_server() -> AsyncIterator[CallServer]:
    async with CallServer() as server:
        yield server


async def create_call(server: CallServer, peer: ClientPeer, **session: Any) -> str:
    """A GPT-Live WebRTC call made with the SDK's ``client.live.create``; its session id."""
    created = await sdk_client(server).live.create(
        session=cast(Any, {"model": "gpt-live-1", **session}),
        transport={"type": "webrtc", "sdp": await peer.offer()},
    )
    await peer.connect(str(created.transport.sdp))
    return created.session.id


def assert_output_audio_on_the_timeline(deltas: list[JSON]) -> None:
    """Sideband output audio carries its range, as long as its audio, in order."""
    assert deltas
    for delta in deltas:
        ms = len(base64.b64decode(delta["delta"])) // PCM16_BYTES_PER_MS
        assert delta["end_ms"] - delta["start_ms"] == ms > 0
        assert "event_id" not in delta
    starts = [delta["start_ms"] for delta in deltas]
    assert starts == sorted(starts)


async def test_live_webrtc_call_runs_the_session_over_rtp_data_channel_and_sideband(
    live_server: CallServer,
) -> None:
    peer = ClientPeer()
    try:
        session_id = await create_call(live_server, peer, instructions="Be brief.")
        async with Sideband(live_server.base_url, session_id) as sideband:
            await until(lambda: live_server.registry.calls[session_id].sidebands)
            peer.microphone.play(TWO_TURNS)
            await sideband.wait_for("session.usage.updated", timeout=15)
            await until(lambda: peer.voiced_chunks > 5)
            await sdk_client(live_server).live.sessions.hangup(session_id)
            assert await sideband.ended() == 1000
    finally:
        await peer.close()
    started = peer.events[0]
    assert started["type"] == "session.started"
    assert started["session"]["id"] == session_id
    assert started["session"]["instructions"] == "Be brief."
    for event in peer.events:  # the data channel is a primary transport: no audio on it
        assert validate_live_event(event) != "session.output_audio.delta"
    said = "".join(e["delta"] for e in peer.events if e["type"] == "session.input_transcript.delta")
    assert said.startswith("Where is my order?")
    assert {"session.input_audio.append", "session.output_audio.delta"} <= sideband.validate()
    assert_output_audio_on_the_timeline(sideband.of_type("session.output_audio.delta"))
    reflected = [
        base64.b64decode(e["audio"]) for e in sideband.of_type("session.input_audio.append")
    ]
    assert sum(map(len, reflected)) >= 600 * PCM16_BYTES_PER_MS  # the caller's first turn
    assert any(any(chunk) for chunk in reflected)  # its voice, not only the silence
    (closed,) = sideband.of_type("session.closed")
    assert closed["reason"] == "remote_hangup"
    assert closed["session"]["id"] == session_id
    assert live_server.registry.calls[session_id].status == "ended"


async def test_an_idle_webrtc_call_pauses_and_speech_resumes_it(live_server: CallServer) -> None:
    peer = ClientPeer()
    try:
        session_id = await create_call(
            live_server, peer, idle_timeout_s=1, wake_policy={"type": "speech"}
        )
        async with Sideband(live_server.base_url, session_id) as sideband:
            await sideband.wait_for("session.paused")
            await asyncio.sleep(1.1)  # a billable second in standby
            peer.microphone.play(TWO_TURNS[: len(TWO_TURNS) // 2])
            await sideband.wait_for("session.resumed")
            await sdk_client(live_server).live.sessions.hangup(session_id)
            await sideband.ended()
    finally:
        await peer.close()
    assert {"session.paused", "session.resumed"} <= sideband.validate()
    assert [e["type"] for e in peer.events].count("session.paused") == 0  # sideband only
    usage = sideband.of_type("session.closed")[0]["usage"]
    assert usage["paused_seconds"] >= 1
    assert usage["active_seconds"] + usage["paused_seconds"] == usage["seconds"]


async def test_a_call_config_with_an_audio_format_is_a_400_and_makes_no_call(
    live_server: CallServer,
) -> None:
    peer = ClientPeer()
    try:
        with pytest.raises(openai.BadRequestError, match="negotiated"):
            await create_call(
                live_server, peer, audio={"format": {"type": "audio/pcm", "rate": 24000}}
            )
    finally:
        await peer.close()
    assert live_server.registry.calls == {}


async def test_rtrec_simulate_answers_live_calls() -> None:
    peer = ClientPeer()
    try:
        async with make_server(port=free_port(), fast=True) as server:
            session_id = await create_call(server, peer)
            await until(lambda: peer.count("session.started") == 1)
    finally:
        await peer.close()
    assert session_id.startswith("live_")


async def test_a_realtime_sideband_cannot_attach_to_a_live_session(
    live_server: CallServer,
) -> None:
    call = live_server.registry.ring_sip("live")
    with pytest.raises(websockets.exceptions.InvalidStatus, match="404"):
        async with sdk_client(live_server).realtime.connect(call_id=call.call_id):
            pass


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


async def test_live_sip_call_incoming_webhook_accept_attach_dtmf_hangup(
    live_server: CallServer, webhook_receiver: WebhookReceiver
) -> None:
    client = sdk_client(live_server)
    await asyncio.to_thread(ring, live_server, webhook_receiver.url, "live")
    body, headers = webhook_receiver.received.get(timeout=5)
    event = client.webhooks.unwrap(body, headers, secret=live_server.endpoints.webhook_secret)
    assert event.type == "live.transport.incoming"
    session_id = event.data.session_id
    with pytest.raises(openai.BadRequestError):  # GPT-Live's accept wants session.type "live"
        await client.live.sessions.accept(session_id, session=cast(Any, {"model": "gpt-live-1"}))
    events: list[JSON] = []
    async with client.live.sideband.connect(session_id=session_id, max_retries=0) as sideband:
        reader = asyncio.create_task(read_sideband(sideband, events))
        await until(lambda: live_server.registry.calls[session_id].sidebands)
        await client.live.sessions.accept(
            session_id, session={"type": "live", "model": "gpt-live-1"}
        )
        await until(lambda: any(e["type"] == "transport.dtmf.received" for e in events))
        await sideband.send(cast(Any, {"type": "transport.dtmf.send", "event": "#"}))
        await until(lambda: any(e["type"] == "transport.dtmf.sent" for e in events))
        await client.live.sessions.hangup(session_id)
        await asyncio.wait_for(reader, 5)
    types = [e["type"] for e in events]
    assert types[0] == "session.started"
    assert events[0]["session"]["id"] == session_id
    assert "session.input_audio.append" in types  # the simulated caller, reflected
    assert [e["event"] for e in events if e["type"].startswith("transport.dtmf")] == ["1", "#"]
    assert types[-1] == "session.closed"
    assert events[-1]["reason"] == "remote_hangup"
    assert live_server.registry.calls[session_id].status == "ended"
