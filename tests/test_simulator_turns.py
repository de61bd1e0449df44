"""GA turns on the simulator via the openai SDK: text and voice answers, barge-in, audio formats."""

from __future__ import annotations

import base64
import math
from array import array

from simulator import FakeRealtimeServer
from simulator.audio import tone_burst
from tests.support.audio import sine_pcm16
from tests.support.simulator import (
    Recorder,
    b64,
    done_usages,
    finish,
    ga_client,
)

TEXT_RESPONSE_GA = [
    "response.created",
    "response.output_item.added",
    "conversation.item.added",
    "response.content_part.added",
    *["response.output_text.delta"] * 10,
    "response.output_text.done",
    "response.content_part.done",
    "conversation.item.done",
    "response.output_item.done",
    "response.done",
    "rate_limits.updated",
]


AUDIO_RESPONSE_GA = [
    "response.created",
    "response.output_item.added",
    "conversation.item.added",
    "response.content_part.added",
    *["response.output_audio_transcript.delta", "response.output_audio.delta"] * 10,
    "response.output_audio.done",
    "response.output_audio_transcript.done",
    "response.content_part.done",
    "conversation.item.done",
    "response.output_item.done",
    "response.done",
    "rate_limits.updated",
]


async def test_ga_text_turn() -> None:
    async with FakeRealtimeServer() as server:
        async with ga_client(server).realtime.connect(model="gpt-realtime") as conn:
            rec = Recorder(conn)
            created = await rec.recv()
            assert created.type == "session.created"
            await rec.send(
                {
                    "type": "session.update",
                    "event_id": "evt_1",
                    "session": {
                        "type": "realtime",
                        "output_modalities": ["text"],
                        "instructions": "Be terse.",
                        "audio": {"input": {"turn_detection": None}},
                    },
                }
            )
            updated = await rec.recv()
            assert updated.type == "session.updated"
            assert updated.session.output_modalities == ["text"]
            await rec.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [
                            {"type": "input_text", "text": "What is the capital of France?"}
                        ],
                    },
                }
            )
            await rec.send({"type": "response.create"})
            await rec.until("rate_limits.updated")
        conn_id = server.handshakes[-1].conn_id
        events = await finish(server, rec, conn_id, beta=False)

    assert [e["type"] for e in events] == [
        "session.created",
        "session.updated",
        "conversation.item.added",
        "conversation.item.done",
        *TEXT_RESPONSE_GA,
    ]
    session = events[0]["session"]
    assert session["id"].startswith("sess_")
    assert len(session["id"]) == 26
    assert all(e["event_id"].startswith("event_") and len(e["event_id"]) == 27 for e in events)
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert all(d["obfuscation"] for d in deltas)
    done = events[-2]["response"]
    text = "".join(d["delta"] for d in deltas)
    assert done["status"] == "completed"
    assert done["output"][0]["content"] == [{"type": "output_text", "text": text}]
    usage = done_usages(events, beta=False)[0]
    assert usage["input_token_details"]["audio_tokens"] == 0
    assert usage["input_token_details"]["cached_tokens"] == 0
    assert usage["output_token_details"] == {
        "text_tokens": math.ceil(len(text) / 4),
        "audio_tokens": 0,
    }
    assert events[-1]["rate_limits"][0]["name"] == "tokens"
    assert len(events[-1]["rate_limits"]) == 1
    assert server.closes[conn_id] == (1000, "", "client")


async def test_ga_voice_turn_with_transcription_and_second_turn() -> None:
    audio = sine_pcm16(1000)
    async with FakeRealtimeServer() as server:
        async with ga_client(server).realtime.connect(model="gpt-realtime") as conn:
            rec = Recorder(conn)
            await rec.recv()
            await rec.send(
                {
                    "type": "session.update",
                    "session": {
                        "type": "realtime",
                        "include": ["item.input_audio_transcription.logprobs"],
                        "audio": {
                            "input": {
                                "format": {"type": "audio/pcm", "rate": 24000},
                                "transcription": {"model": "gpt-4o-mini-transcribe"},
                                "turn_detection": {
                                    "type": "server_vad",
                                    "silence_duration_ms": 500,
                                },
                            },
                            "output": {"voice": "marin"},
                        },
                    },
                }
            )
            updated = await rec.recv()
            vad = updated.session.audio.input.turn_detection
            assert vad.create_response is True
            assert vad.silence_duration_ms == 500
            for start in range(0, len(audio), 4800):
                await rec.send(
                    {"type": "input_audio_buffer.append", "audio": b64(audio[start : start + 4800])}
                )
            await rec.send({"type": "input_audio_buffer.commit", "event_id": "evt_commit"})
            turn1 = await rec.until("rate_limits.updated")
            # Second turn: a text message, then an explicit response (re-bills the first turn).
            await rec.send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "And?"}],
                    },
                }
            )
            await rec.send({"type": "response.create", "response": {"metadata": {"turn": "2"}}})
            await rec.until("rate_limits.updated")
        events = await finish(server, rec, 1, beta=False)

    types = [e.type for e in turn1]
    assert types[:8] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.delta",
    ]
    assert types[8:] == [
        "conversation.item.input_audio_transcription.completed",
        *AUDIO_RESPONSE_GA,
    ]
    by_type = {e["type"]: e for e in events}
    assert by_type["input_audio_buffer.speech_started"]["audio_start_ms"] == 0
    assert by_type["input_audio_buffer.speech_stopped"]["audio_end_ms"] == 1000
    user_item_id = by_type["input_audio_buffer.committed"]["item_id"]
    assert by_type["input_audio_buffer.speech_started"]["item_id"] == user_item_id
    completed = by_type["conversation.item.input_audio_transcription.completed"]
    words = len(completed["transcript"].split())
    assert completed["usage"] == {
        "type": "tokens",
        "total_tokens": 10 + words,
        "input_tokens": 10,
        "input_token_details": {"text_tokens": 0, "audio_tokens": 10},
        "output_tokens": words,
    }
    assert completed["logprobs"]
    chunks = [
        base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"
    ]
    assert [len(c) for c in chunks] == [4800] * 20  # two spoken answers of 1 s each
    samples = array("h", chunks[0])
    assert max(samples) > 5000
    assert min(samples) < -5000
    dones = [e["response"] for e in events if e["type"] == "response.done"]
    assert [d["status"] for d in dones] == ["completed", "completed"]
    assert dones[0]["audio"]["output"]["voice"] == "marin"
    assert dones[1]["metadata"] == {"turn": "2"}
    first, second = done_usages(events, beta=False)
    assert first["output_token_details"]["audio_tokens"] == 20  # 1 s at 1 token / 50 ms
    assert first["input_token_details"]["audio_tokens"] == 10  # 1 s at 1 token / 100 ms
    assert first["input_token_details"]["cached_tokens"] == 0
    # The second response re-bills the user audio and the assistant audio, part of it cached.
    assert second["input_token_details"]["audio_tokens"] == 10 + 20
    assert second["input_tokens"] > first["input_tokens"]
    assert second["input_token_details"]["cached_tokens"] > 0


async def test_ga_barge_in_cancels_with_turn_detected() -> None:
    async with FakeRealtimeServer(delta_interval_s=0.02) as server:
        async with ga_client(server).realtime.connect(model="gpt-realtime") as conn:
            rec = Recorder(conn)
            await rec.recv()
            await rec.send({"type": "response.create"})
            await rec.until("response.output_audio.delta")
            await rec.send({"type": "input_audio_buffer.append", "audio": b64(sine_pcm16(200))})
            got = await rec.until("rate_limits.updated")
        await finish(server, rec, 1, beta=False)

    assert got[0].type == "input_audio_buffer.speech_started"
    assert got[0].audio_start_ms == 0
    done = next(e for e in got if e.type == "response.done").response
    assert done.status == "cancelled"
    assert done.status_details.reason == "turn_detected"
    assert done.output[0].status == "incomplete"


async def test_g711_formats_count_ms_by_format() -> None:
    async with FakeRealtimeServer(audio_chunk_ms=250) as server:
        async with ga_client(server).realtime.connect(model="gpt-realtime") as conn:
            rec = Recorder(conn)
            await rec.recv()
            await rec.send(
                {
                    "type": "session.update",
                    "session": {
                        "type": "realtime",
                        "audio": {
                            "input": {"format": {"type": "audio/pcmu"}},
                            "output": {"format": {"type": "audio/pcma"}},
                        },
                    },
                }
            )
            await rec.recv()
            speech = tone_burst(0, 500, 0, "g711_ulaw")  # 4000 bytes, decoded by the VAD
            await rec.send({"type": "input_audio_buffer.append", "audio": b64(speech)})
            await rec.send({"type": "input_audio_buffer.commit"})
            await rec.until("rate_limits.updated")
            await rec.send(
                {
                    "type": "session.update",
                    "event_id": "evt_rate",
                    "session": {
                        "type": "realtime",
                        "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}},
                    },
                }
            )
            error = await rec.recv()
        events = await finish(server, rec, 1, beta=False)

    started = next(e for e in events if e["type"] == "input_audio_buffer.speech_started")
    stopped = next(e for e in events if e["type"] == "input_audio_buffer.speech_stopped")
    assert started["audio_start_ms"] == 0
    assert stopped["audio_end_ms"] == 500  # 4000 bytes of G.711 at 8 bytes/ms
    chunks = [
        base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"
    ]
    assert [len(c) for c in chunks] == [2000] * 4  # 250 ms of 8 kHz A-law
    done = next(e for e in events if e["type"] == "response.done")["response"]
    assert done["audio"]["output"]["format"] == {"type": "audio/pcma"}
    assert done["usage"]["input_token_details"]["audio_tokens"] == 5
    assert error.error.code == "integer_below_min_value"
