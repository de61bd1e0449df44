"""The simulator's beta interface: chosen by header or subprotocol, with beta event shapes."""

from __future__ import annotations

import json

from websockets.asyncio.client import connect as ws_connect

from simulator import FakeRealtimeServer
from tests.support.audio import sine_pcm16
from tests.support.simulator import (
    BETA_MODEL,
    Recorder,
    b64,
    beta_client,
    done_usages,
    finish,
)


async def test_beta_text_and_voice_turns() -> None:
    audio = sine_pcm16(600)
    async with FakeRealtimeServer() as server:
        async with beta_client(server).beta.realtime.connect(model=BETA_MODEL) as conn:
            rec = Recorder(conn)
            created = await rec.recv()
            assert created.session.modalities == ["audio", "text"]
            await rec.send(
                {
                    "type": "session.update",
                    "session": {"modalities": ["text"], "turn_detection": None},
                }
            )
            await rec.recv()
            await rec.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "Hello"}],
                    },
                }
            )
            await rec.send({"type": "response.create"})
            text_turn = await rec.until("rate_limits.updated")
            await rec.send(
                {
                    "type": "session.update",
                    "session": {
                        "modalities": ["text", "audio"],
                        "input_audio_transcription": {"model": "whisper-1"},
                        "turn_detection": {"type": "server_vad"},
                    },
                }
            )
            await rec.recv()
            await rec.send({"type": "input_audio_buffer.append", "audio": b64(audio)})
            await rec.send({"type": "input_audio_buffer.commit"})
            voice_turn = await rec.until("rate_limits.updated")
        events = await finish(server, rec, 1, beta=True)

    assert server.handshakes[0].headers["openai-beta"] == "realtime=v1"
    assert [e.type for e in text_turn] == [
        "conversation.item.created",
        "response.created",
        "response.output_item.added",
        "conversation.item.created",
        "response.content_part.added",
        *["response.text.delta"] * 10,
        "response.text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    assert [e.type for e in voice_turn] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.created",
        "conversation.item.input_audio_transcription.completed",
        "response.created",
        "response.output_item.added",
        "conversation.item.created",
        "response.content_part.added",
        *["response.audio_transcript.delta", "response.audio.delta"] * 10,
        "response.audio.done",
        "response.audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    assert voice_turn[4].usage.type == "duration"
    assert voice_turn[4].usage.seconds == 0.6
    assert not any("obfuscation" in e for e in events)
    first, second = done_usages(events, beta=True)
    assert second["input_tokens"] > first["input_tokens"]
    assert second["input_token_details"]["cached_tokens"] > 0
    assert second["input_token_details"]["audio_tokens"] == 6
    assert [r["name"] for r in events[-1]["rate_limits"]] == ["requests", "tokens"]
    done = [e for e in events if e["type"] == "response.done"][-1]["response"]
    assert done["modalities"] == ["text", "audio"]
    assert done["output_audio_format"] == "pcm16"
    assert done["output"][0]["content"][0]["type"] == "audio"


async def test_beta_by_subprotocol_with_browser_style_key() -> None:
    async with FakeRealtimeServer() as server:
        protocols = ["realtime", "openai-insecure-api-key.sk-browser", "openai-beta.realtime-v1"]
        async with ws_connect(
            server.ws_url + "/realtime?model=gpt-realtime",
            subprotocols=protocols,  # type: ignore[arg-type]
        ) as ws:
            assert ws.subprotocol == "realtime"
            created = json.loads(await ws.recv())
        await server.wait_closed(1)

    assert created["type"] == "session.created"
    assert "modalities" in created["session"]
    assert "audio" not in created["session"]
    assert server.handshakes[0].subprotocols == protocols
