"""The simulator's WebRTC and SIP calls, driven by a real aiortc peer and the openai SDK."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.error
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import openai
import pytest
import websockets

from simulator.call_server import CallServer
from simulator.pacing import Pacing
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


@pytest.fixture
async def call_server() -> AsyncIterator[CallServer]:
    async with CallServer() as server:
        yield server


async def test_webrtc_call_two_turns_over_rtp_data_channel_and_sideband(
    call_server: CallServer,
) -> None:
    client = sdk_client(call_server)
    peer = ClientPeer()
    try:
        raw = await client.realtime.calls.with_raw_response.create(sdp=await peer.offer())
        assert raw.http_response.status_code == 201
        assert raw.headers["content-type"] == "application/sdp"
        call_id = raw.headers["location"].removeprefix("/v1/realtime/calls/")
        assert call_id.startswith("rtc_")
        sideband_events: list[dict[str, Any]] = []
        async with client.realtime.connect(call_id=call_id) as sideband:
            reader = asyncio.create_task(read_sideband(sideband, sideband_events))
            await peer.connect(raw.http_response.text)
            await until(lambda: peer.count("session.created") == 1)
            peer.microphone.play(TWO_TURNS)
            await until(lambda: peer.count("response.done") == 2 and peer.voiced_chunks > 10)
            ends = ("output_audio_buffer.stopped", "output_audio_buffer.cleared")
            await until(lambda: sum(map(peer.count, ends)) == 2)
            await until(lambda: sum(e["type"] == "response.done" for e in sideband_events) == 2)
            await client.realtime.calls.hangup(call_id)
            await asyncio.wait_for(reader, 5)
    finally:
        await peer.close()
    assert peer.count("input_audio_buffer.speech_started") == 2
    assert peer.count("response.output_audio_transcript.done") == 2
    assert peer.count("response.output_audio.delta") == 0  # audio goes over RTP, not the channel
    # Each answer's audio starts, then plays out or is cut by the next turn (a barge-in).
    playback = [e["type"] for e in peer.events if e["type"].startswith("output_audio_buffer")]
    assert playback[0::2] == ["output_audio_buffer.started"] * 2
    assert playback[1] in ("output_audio_buffer.cleared", "output_audio_buffer.stopped")
    assert playback[3] == "output_audio_buffer.stopped"
    assert {e["type"] for e in sideband_events} >= {
        "input_audio_buffer.committed",
        "response.output_audio_transcript.done",
    }
    assert call_server.registry.calls[call_id].status == "ended"


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


async def test_sip_call_webhook_accept_sideband_hangup(
    call_server: CallServer, webhook_receiver: WebhookReceiver
) -> None:
    client = sdk_client(call_server)
    rung = await asyncio.to_thread(ring, call_server, webhook_receiver.url)
    body, headers = webhook_receiver.received.get(timeout=5)
    event = client.webhooks.unwrap(body, headers, secret=call_server.endpoints.webhook_secret)
    assert event.type == "realtime.call.incoming"
    call_id = event.data.call_id
    assert (rung["call_id"], rung["webhook_status"]) == (call_id, 200)
    assert call_server.registry.calls[call_id].status == "ringing"
    sideband_events: list[dict[str, Any]] = []
    async with client.realtime.connect(call_id=call_id) as sideband:
        reader = asyncio.create_task(read_sideband(sideband, sideband_events))
        await client.realtime.calls.accept(
            call_id, type="realtime", model="gpt-realtime", instructions="Greet the caller."
        )
        await until(lambda: sum(e["type"] == "response.done" for e in sideband_events) == 2)
        await until(
            lambda: any(e["type"] == "output_audio_buffer.stopped" for e in sideband_events)
        )
        await client.realtime.calls.hangup(call_id)
        await asyncio.wait_for(reader, 5)
    types = [e["type"] for e in sideband_events]
    assert types.count("output_audio_buffer.started") == 2  # the phone line plays the answers
    assert types.count("input_audio_buffer.speech_started") == 2
    assert sideband_events[0]["type"] == "session.created"
    assert sideband_events[0]["session"]["instructions"] == "Greet the caller."
    assert call_server.registry.calls[call_id].status == "ended"


async def test_webhook_with_another_secret_fails_verification(
    call_server: CallServer, webhook_receiver: WebhookReceiver
) -> None:
    client = sdk_client(call_server)
    await asyncio.to_thread(ring, call_server, webhook_receiver.url)
    body, headers = webhook_receiver.received.get(timeout=5)
    with pytest.raises(openai.InvalidWebhookSignatureError):
        client.webhooks.unwrap(body, headers, secret="whsec_" + "QUJD" * 8)


async def test_rejected_sip_call_cannot_be_accepted(
    call_server: CallServer, webhook_receiver: WebhookReceiver
) -> None:
    client = sdk_client(call_server)
    call_id = (await asyncio.to_thread(ring, call_server, webhook_receiver.url))["call_id"]
    await client.realtime.calls.reject(call_id, status_code=486)
    with pytest.raises(openai.BadRequestError):
        await client.realtime.calls.accept(call_id, type="realtime", model="gpt-realtime")
    assert call_server.registry.calls[call_id].status == "rejected"


async def test_client_secret_opens_a_call_and_a_made_up_one_does_not(
    call_server: CallServer,
) -> None:
    secret = await sdk_client(call_server).realtime.client_secrets.create()
    assert secret.value.startswith("ek_")
    peer = ClientPeer()
    try:
        offer = await peer.offer()
        browser = sdk_client(call_server, api_key=secret.value)
        raw = await browser.realtime.calls.with_raw_response.create(sdp=offer)
        assert raw.http_response.status_code == 201
        with pytest.raises(openai.AuthenticationError):
            await sdk_client(call_server, api_key="ek_madeup").realtime.calls.create(sdp=offer)
    finally:
        await peer.close()


async def test_multipart_create_configures_the_session_and_a_bad_config_is_a_400(
    call_server: CallServer,
) -> None:
    client = sdk_client(call_server)
    session: Any = {
        "type": "realtime",
        "model": "gpt-realtime-mini",
        "instructions": "Answer in one short sentence.",
        "audio": {"input": {"transcription": {"model": "whisper-1"}}},
    }
    peer = ClientPeer()
    try:
        answer = await client.realtime.calls.create(sdp=await peer.offer(), session=session)
        await peer.connect(answer.text)
        await until(lambda: peer.count("session.created") == 1)
        with pytest.raises(openai.BadRequestError, match="temperature"):
            await client.realtime.calls.create(
                sdp=await peer.offer(), session=cast(Any, {**session, "temperature": 9})
            )
    finally:
        await peer.close()
    created = peer.events[0]["session"]
    assert created["instructions"] == "Answer in one short sentence."
    assert created["model"] == "gpt-realtime-mini"
    assert created["audio"]["input"]["transcription"]["model"] == "whisper-1"
    assert len(call_server.registry.calls) == 1  # the refused offer made no call


async def test_pcmu_call_is_heard_and_answered(call_server: CallServer) -> None:
    client = sdk_client(call_server)
    peer = ClientPeer(codec="audio/PCMU")
    try:
        answer = (await client.realtime.calls.create(sdp=await peer.offer())).text
        await peer.connect(answer)
        peer.microphone.play(TWO_TURNS[: len(TWO_TURNS) // 2])
        await until(lambda: peer.count("response.done") == 1 and peer.voiced_chunks > 10)
    finally:
        await peer.close()
    assert "PCMU/8000" in answer
    assert "opus" not in answer.lower()
    assert peer.count("input_audio_buffer.speech_started") == 1


async def test_sideband_for_an_unknown_call_is_refused(call_server: CallServer) -> None:
    client = sdk_client(call_server)
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        async with client.realtime.connect(call_id="rtc_unknown"):
            pass
    assert refused.value.response.status_code == 404


async def test_answer_paced_slower_than_real_time_is_one_playback() -> None:
    # At 0.8x real time the line runs dry between audio deltas: still one started, one stopped.
    async with CallServer(pacing=Pacing(audio_speed=0.8)) as server:
        client = sdk_client(server)
        peer = ClientPeer()
        try:
            await peer.connect((await client.realtime.calls.create(sdp=await peer.offer())).text)
            peer.microphone.play(TWO_TURNS[: len(TWO_TURNS) // 2])
            await until(lambda: peer.count("output_audio_buffer.stopped") == 1)
            await asyncio.sleep(0.3)  # nothing more may follow
        finally:
            await peer.close()
    playback = [e["type"] for e in peer.events if e["type"].startswith("output_audio_buffer")]
    assert playback == ["output_audio_buffer.started", "output_audio_buffer.stopped"]
    assert peer.count("response.done") == 1


async def test_client_events_over_the_data_channel_and_the_sideband(
    call_server: CallServer,
) -> None:
    client = sdk_client(call_server)
    peer = ClientPeer()
    try:
        raw = await client.realtime.calls.with_raw_response.create(sdp=await peer.offer())
        call_id = raw.headers["location"].rsplit("/", 1)[1]
        await peer.connect(raw.http_response.text)
        await until(lambda: peer.count("session.created") == 1)
        update = {"type": "session.update", "session": {"type": "realtime", "instructions": "Hi"}}
        peer.channel.send(json.dumps(update))
        text_only = {"output_modalities": ["text"]}
        peer.channel.send(json.dumps({"type": "response.create", "response": text_only}))
        await until(lambda: peer.count("response.done") == 1)
        async with client.realtime.connect(call_id=call_id) as sideband:
            await sideband.send(
                {"type": "response.create", "response": {"output_modalities": ["text"]}}
            )
            while (await asyncio.wait_for(sideband.recv(), 5)).type != "response.done":
                pass
        await until(lambda: peer.count("response.done") == 2)  # the data channel sees it too
    finally:
        await peer.close()
    types = [e["type"] for e in peer.events]
    assert types.index("session.updated") < types.index("response.created")
    assert peer.count("output_audio_buffer.started") == 0  # text answers play nothing


async def test_rtrec_simulate_server_answers_calls_on_its_one_port() -> None:
    server = make_server("127.0.0.1", 0, fast=True)
    await server.start()
    peer = ClientPeer()
    try:
        raw = await sdk_client(server).realtime.calls.with_raw_response.create(
            sdp=await peer.offer()
        )
        assert raw.http_response.status_code == 201
        async with sdk_client(server).realtime.connect(model="gpt-realtime") as conn:
            assert (await conn.recv()).type == "session.created"  # the WebSocket API, same port
    finally:
        await peer.close()
        await server.stop()


async def test_front_door_answers_plain_http_errors(call_server: CallServer) -> None:
    async def exchange(request: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", call_server.port)
        writer.write(request)
        reply = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return reply

    too_big = b"POST /v1/realtime/calls HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"
    no_key = b"POST /v1/realtime/calls HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
    assert (await exchange(b"GET /v1/models HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 404 ")
    assert (await exchange(too_big)).startswith(b"HTTP/1.1 400 ")
    assert (await exchange(no_key)).startswith(b"HTTP/1.1 401 ")
    with pytest.raises(ValueError, match="loopback"):
        CallServer("0.0.0.0")


async def test_a_client_that_leaves_without_hangup_ends_the_call(call_server: CallServer) -> None:
    client = sdk_client(call_server)
    peer = ClientPeer()
    raw = await client.realtime.calls.with_raw_response.create(sdp=await peer.offer())
    call = call_server.registry.calls[raw.headers["location"].rsplit("/", 1)[1]]
    await peer.connect(raw.http_response.text)
    async with client.realtime.connect(call_id=call.call_id) as sideband:
        await until(lambda: peer.count("session.created") == 1)
        await peer.close()
        await asyncio.wait_for(call.ended.wait(), 10)
        with pytest.raises(websockets.exceptions.ConnectionClosedOK):
            await asyncio.wait_for(sideband.recv(), 5)
    assert call.status == "ended"


async def test_ringing_an_unreachable_webhook_is_a_502_and_no_call(call_server: CallServer) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_url = f"http://127.0.0.1:{unused.getsockname()[1]}/webhooks"
    with pytest.raises(urllib.error.HTTPError) as refused:
        await asyncio.to_thread(ring, call_server, closed_url)
    assert refused.value.code == 502
    assert [c.status for c in call_server.registry.calls.values()] == ["ended"]
