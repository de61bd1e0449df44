"""GPT-Live's WebRTC calls through the simulator's call layer, with a stand-in session engine
(the GPT-Live session logic is another module's): JSON create, RTP both ways, /attach, hangup."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import openai
import pytest
import websockets

from simulator.audio import tone_burst
from simulator.call_engine import EngineIO, SessionEngine
from simulator.call_server import CallServer
from simulator.events import JSON, server_event
from tests.support.calls import (
    TWO_TURNS,
    ClientPeer,
    WebhookReceiver,
    ring,
    sdk_client,
    until,
)


class EchoLiveEngine:
    """Stands in for GPT-Live's engine: says ``session.started``, reflects the caller's audio to
    sidebands, and answers every 0.5 s of caller audio with 0.2 s of its own."""

    def __init__(self, io: EngineIO) -> None:
        self.io = io
        self.heard_bytes = 0
        self.answer = tone_burst(0, 200, 0)

    async def open(self, session_config: JSON | None) -> None:
        await self.io.publish(server_event("session.started", session=session_config or {}))

    async def handle(self, message: str) -> None:
        pass

    async def feed_audio(self, pcm: bytes) -> None:
        audio = base64.b64encode(pcm).decode("ascii")
        await self.io.publish_sideband({"type": "session.input_audio.append", "audio": audio})
        before, self.heard_bytes = self.heard_bytes, self.heard_bytes + len(pcm)
        if before // 24000 != self.heard_bytes // 24000:
            self.io.play(self.answer)
            delta = base64.b64encode(self.answer).decode("ascii")
            await self.io.publish_sideband(server_event("session.output_audio.delta", delta=delta))

    async def playback_stopped(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


@pytest.fixture
async def live_server() -> AsyncIterator[CallServer]:
    engines: list[SessionEngine] = []

    def factory(io: EngineIO) -> SessionEngine:
        engines.append(EchoLiveEngine(io))
        return engines[-1]

    async with CallServer(live_engine=factory) as server:
        yield server


async def test_live_webrtc_session_create_attach_audio_both_ways_hangup(
    live_server: CallServer,
) -> None:
    client = sdk_client(live_server)
    peer = ClientPeer()
    sideband_types: list[str] = []
    try:
        created = await client.live.create(
            session={"model": "gpt-live-1", "instructions": "Be brief."},
            transport={"type": "webrtc", "sdp": await peer.offer()},
        )
        session_id = created.session.id
        assert session_id.startswith("live_")
        await peer.connect(str(created.transport.sdp))
        attach = client.live.sideband.connect(session_id=session_id, max_retries=0)
        async with attach as sideband:

            async def read() -> None:
                async for event in sideband:
                    sideband_types.append(event.type)

            reader = asyncio.create_task(read())
            peer.microphone.play(TWO_TURNS)
            await until(
                lambda: peer.voiced_chunks > 5 and "session.output_audio.delta" in sideband_types
            )
            await client.live.sessions.hangup(session_id)
            await asyncio.wait_for(reader, 5)
    finally:
        await peer.close()
    assert peer.events[0]["type"] == "session.started"
    assert peer.events[0]["session"]["instructions"] == "Be brief."
    assert "session.input_audio.append" in sideband_types
    assert live_server.registry.calls[session_id].status == "ended"


async def test_live_create_without_a_live_engine_is_501() -> None:
    async with CallServer() as server:
        peer = ClientPeer()
        try:
            with pytest.raises(openai.APIStatusError) as refused:
                await sdk_client(server).live.create(
                    session={"model": "gpt-live-1"},
                    transport={"type": "webrtc", "sdp": await peer.offer()},
                )
        finally:
            await peer.close()
    assert refused.value.status_code == 501


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


async def test_live_sip_call_incoming_webhook_accept_attach_hangup(
    live_server: CallServer, webhook_receiver: WebhookReceiver
) -> None:
    client = sdk_client(live_server)
    await asyncio.to_thread(ring, live_server, webhook_receiver.url, "live")
    body, headers = webhook_receiver.received.get(timeout=5)
    event = client.webhooks.unwrap(body, headers, secret=live_server.endpoints.webhook_secret)
    assert event.type == "live.transport.incoming"
    session_id = event.data.session_id
    assert session_id.startswith("live_")
    with pytest.raises(openai.BadRequestError):  # GPT-Live's accept wants session.type "live"
        await client.live.sessions.accept(session_id, session=cast(Any, {"model": "gpt-live-1"}))
    sideband_types: list[str] = []
    async with client.live.sideband.connect(session_id=session_id, max_retries=0) as sideband:

        async def read() -> None:
            async for server_event in sideband:
                sideband_types.append(server_event.type)

        reader = asyncio.create_task(read())
        await client.live.sessions.accept(
            session_id, session={"type": "live", "model": "gpt-live-1"}
        )
        await until(lambda: "session.output_audio.delta" in sideband_types)
        await client.live.sessions.hangup(session_id)
        await asyncio.wait_for(reader, 5)
    assert sideband_types[0] == "session.started"
    assert "session.input_audio.append" in sideband_types  # the simulated caller, reflected
    assert live_server.registry.calls[session_id].status == "ended"
