"""Transcription sessions on the simulator, GA and beta."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import connect as ws_connect

from simulator import FakeRealtimeServer
from tests.support.audio import sine_pcm16
from tests.support.simulator import (
    TIMEOUT,
    Recorder,
    b64,
    finish,
    ga_client,
)


async def test_ga_transcription_session() -> None:
    async with FakeRealtimeServer() as server:
        client = ga_client(server)
        async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
            rec = Recorder(conn)
            created = await rec.recv()
            assert created.session.type == "transcription"
            await rec.send(
                {
                    "type": "session.update",
                    "session": {
                        "type": "transcription",
                        "audio": {
                            "input": {
                                "transcription": {"model": "whisper-1"},
                                "turn_detection": None,
                            }
                        },
                    },
                }
            )
            await rec.recv()
            await rec.send({"type": "input_audio_buffer.append", "audio": b64(sine_pcm16(500))})
            await rec.send({"type": "input_audio_buffer.commit"})
            got = await rec.until("conversation.item.input_audio_transcription.completed")
            await rec.send({"type": "response.create", "event_id": "evt_resp"})
            error = await rec.recv()
        await finish(server, rec, 1, beta=False)

    assert server.handshakes[0].path == "/v1/realtime?intent=transcription"
    assert [e.type for e in got] == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.completed",
    ]
    assert got[-1].usage.type == "duration"
    assert got[-1].usage.seconds == 0.5
    assert error.type == "error"
    assert error.error.event_id == "evt_resp"
    assert "rate_limits.updated" not in rec.types


async def test_beta_transcription_session_first_frame() -> None:
    async with FakeRealtimeServer() as server:
        headers = {"Authorization": "Bearer sk-test", "OpenAI-Beta": "realtime=v1"}
        url = server.ws_url + "/realtime?intent=transcription"
        async with ws_connect(url, additional_headers=headers) as ws:
            update = {
                "type": "transcription_session.update",
                "session": {"input_audio_transcription": {"model": "gpt-4o-transcribe"}},
            }
            await ws.send(json.dumps(update))
            await ws.send(
                json.dumps({"type": "input_audio_buffer.append", "audio": b64(sine_pcm16(300))})
            )
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            types: list[str] = []
            while not types or types[-1] != "conversation.item.input_audio_transcription.completed":
                types.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["type"])

    assert types[:3] == [
        "transcription_session.created",
        "transcription_session.updated",
        "input_audio_buffer.speech_started",
    ]
    assert types[3:6] == [
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.created",
    ]
    assert "conversation.item.input_audio_transcription.delta" in types
