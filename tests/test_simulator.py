"""Tests of the fake Realtime server (simulator/) via the openai SDK and raw WebSocket clients."""

from __future__ import annotations

import asyncio
import base64
import json
import math
from array import array

import openai
import pytest
import websockets
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as sync_ws_connect

from simulator import FakeRealtimeServer, LoggedMessage, run_in_thread
from simulator.audio import tone_burst
from tests.support.simulator import (
    BETA_MODEL,
    TIMEOUT,
    Recorder,
    b64,
    beta_client,
    check_usage,
    done_usages,
    finish,
    ga_client,
    validate_server_events,
)


# --------------------------------------------------------------------------- helpers
def pcm16_sine(ms: int, freq: float = 330.0) -> bytes:
    n = ms * 24
    return array(
        "h", (int(8000 * math.sin(2 * math.pi * freq * i / 24000)) for i in range(n))
    ).tobytes()


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


# --------------------------------------------------------------------------- GA
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
    audio = pcm16_sine(1000)
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


async def test_ga_client_cancel_and_errors_keep_socket_open() -> None:
    async with FakeRealtimeServer(delta_interval_s=0.02) as server:
        async with ga_client(server).realtime.connect(model="gpt-realtime") as conn:
            rec = Recorder(conn)
            await rec.recv()
            await rec.send({"type": "response.create", "event_id": "evt_create"})
            got = await rec.until("response.output_audio.delta")
            response_id = got[0].response.id
            await rec.send(
                {"type": "response.cancel", "event_id": "evt_cancel", "response_id": response_id}
            )
            await rec.until("rate_limits.updated")
            await rec.send({"type": "response.cancel", "event_id": "evt_cancel_2"})
            await rec.send({"type": "input_audio_buffer.commit", "event_id": "evt_commit"})
            await rec.send({"type": "session.update", "event_id": "evt_no_type", "session": {}})
            await rec.send(
                {
                    "type": "session.update",
                    "event_id": "evt_voice",
                    "session": {"type": "realtime", "audio": {"output": {"voice": "cedar"}}},
                }
            )
            errors = [await rec.recv() for _ in range(4)]
            await conn.send_raw("{not json")
            await conn.send_raw(b"\x00\x01binary")
            await conn.send_raw(json.dumps({"type": "no.such.event", "event_id": "evt_unknown"}))
            errors += [await rec.recv() for _ in range(3)]
            await rec.send(
                {
                    "type": "session.update",
                    "session": {"type": "realtime", "instructions": "still here"},
                }
            )
            assert (await rec.recv()).type == "session.updated"
        conn_id = server.handshakes[-1].conn_id
        await server.wait_closed(conn_id)
        events = validate_server_events(server, conn_id, beta=False)
        assert rec.types == [e["type"] for e in events]

    done = next(e["response"] for e in events if e["type"] == "response.done")
    assert done["id"] == response_id
    assert done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert done["output"][0]["status"] == "incomplete"
    check_usage(done["usage"], beta=False)
    assert 0 < done["usage"]["output_token_details"]["audio_tokens"] < 20
    transcript = done["output"][0]["content"][0]["transcript"]
    deltas = [e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta"]
    assert transcript == "".join(deltas)
    assert [(e.type, e.error.code, e.error.event_id, e.error.param) for e in errors] == [
        ("error", "response_cancel_not_active", "evt_cancel_2", None),
        ("error", "input_audio_buffer_commit_empty", "evt_commit", None),
        ("error", "missing_required_parameter", "evt_no_type", "session.type"),
        ("error", "cannot_update_voice", "evt_voice", "session.audio.output.voice"),
        ("error", "invalid_json", None, None),
        ("error", "invalid_event", None, None),
        ("error", "invalid_value", "evt_unknown", "type"),
    ]
    assert all(e.error.type == "invalid_request_error" for e in errors)
    client_frames = server.messages(conn_id, "client")
    assert client_frames[-4].data == "{not json"
    assert client_frames[-3].data == b"\x00\x01binary"
    assert client_frames[-3].event is None


async def test_ga_barge_in_cancels_with_turn_detected() -> None:
    async with FakeRealtimeServer(delta_interval_s=0.02) as server:
        async with ga_client(server).realtime.connect(model="gpt-realtime") as conn:
            rec = Recorder(conn)
            await rec.recv()
            await rec.send({"type": "response.create"})
            await rec.until("response.output_audio.delta")
            await rec.send({"type": "input_audio_buffer.append", "audio": b64(pcm16_sine(200))})
            got = await rec.until("rate_limits.updated")
        await finish(server, rec, 1, beta=False)

    assert got[0].type == "input_audio_buffer.speech_started"
    assert got[0].audio_start_ms == 0
    done = next(e for e in got if e.type == "response.done").response
    assert done.status == "cancelled"
    assert done.status_details.reason == "turn_detected"
    assert done.output[0].status == "incomplete"


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
            await rec.send({"type": "input_audio_buffer.append", "audio": b64(pcm16_sine(500))})
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


async def test_ga_item_operations_and_out_of_band_response() -> None:
    async with FakeRealtimeServer() as server:
        async with ga_client(server).realtime.connect(model="gpt-realtime") as conn:
            rec = Recorder(conn)
            await rec.recv()
            await rec.send({"type": "response.create"})
            item_id = (await rec.until("rate_limits.updated"))[1].item.id
            await rec.send(
                {
                    "type": "conversation.item.truncate",
                    "item_id": item_id,
                    "content_index": 0,
                    "audio_end_ms": 400,
                }
            )
            truncated = await rec.recv()
            await rec.send({"type": "conversation.item.retrieve", "item_id": item_id})
            retrieved = await rec.recv()
            await rec.send(
                {
                    "type": "conversation.item.create",
                    "previous_item_id": "root",
                    "item": {
                        "type": "message",
                        "role": "system",
                        "content": [{"type": "input_text", "text": "Be nice."}],
                    },
                }
            )
            added = await rec.until("conversation.item.done")
            await rec.send({"type": "conversation.item.delete", "item_id": item_id})
            deleted = await rec.recv()
            await rec.send(
                {"type": "conversation.item.delete", "item_id": item_id, "event_id": "evt_del"}
            )
            error = await rec.recv()
            await rec.send(
                {
                    "type": "response.create",
                    "response": {
                        "conversation": "none",
                        "output_modalities": ["text"],
                        "max_output_tokens": 3,
                        "metadata": {"purpose": "oob"},
                    },
                }
            )
            oob = await rec.until("rate_limits.updated")
        events = await finish(server, rec, 1, beta=False)

    assert truncated.type == "conversation.item.truncated"
    assert truncated.audio_end_ms == 400
    content = retrieved.item.content[0]
    assert content.type == "output_audio"
    assert content.transcript == ""
    assert len(base64.b64decode(content.audio)) == 400 * 48
    assert added[0].previous_item_id is None
    assert deleted.item_id == item_id
    assert (error.error.event_id, error.error.param) == ("evt_del", "item_id")
    assert [e.type for e in oob] == [
        "response.created",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 3,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    done = events[-2]["response"]
    assert done["conversation_id"] is None
    assert done["metadata"] == {"purpose": "oob"}
    assert done["status_details"] == {"type": "incomplete", "reason": "max_output_tokens"}
    assert done["usage"]["output_tokens"] == 3
    assert done["usage"]["input_token_details"]["audio_tokens"] == 0
    check_usage(done["usage"], beta=False)


async def test_rate_limited_model_fails_every_response() -> None:
    async with FakeRealtimeServer() as server:
        async with ga_client(server).realtime.connect(model="rate-limited-model") as conn:
            rec = Recorder(conn)
            await rec.recv()
            await rec.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
            got = await rec.until("response.done")
        await finish(server, rec, 1, beta=False)

    assert [e.type for e in got] == ["response.created", "response.done"]
    done = server.events(1, "server")[-1]["response"]
    assert done["status"] == "failed"
    assert done["usage"] is None
    assert done["output"] == []
    assert done["output_modalities"] == ["text"]
    error = done["status_details"]["error"]
    assert (error["type"], error["code"]) == ("tokens", "rate_limit_exceeded")
    assert "rate-limited-model" in error["message"]


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


# --------------------------------------------------------------------------- beta
async def test_beta_text_and_voice_turns() -> None:
    audio = pcm16_sine(600)
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


# --------------------------------------------------------------------------- handshake, auth, close
async def test_missing_key_gets_error_then_close_3000() -> None:
    async with FakeRealtimeServer() as server:
        async with ws_connect(server.ws_url + "/realtime?model=gpt-realtime") as ws:
            first = json.loads(await ws.recv())
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 3000
            assert ws.close_reason == "invalid_request_error.missing_bearer"
        close = await server.wait_closed(1)
        validate_server_events(server, 1, beta=False)

    assert first["type"] == "error"
    assert first["error"]["type"] == "invalid_request_error"
    assert first["error"]["code"] == "missing_bearer"
    assert close == (3000, "invalid_request_error.missing_bearer", "server")
    assert server.handshakes[0].status == 101


async def test_refused_upgrade_404_and_azure_path() -> None:
    async with FakeRealtimeServer() as server:
        with pytest.raises(InvalidStatus) as refused:
            await ws_connect(
                server.ws_url + "/realtime?model=gpt-realtime",
                additional_headers={"Authorization": "Bearer sk-refuse-upgrade"},
            )
        assert refused.value.response.status_code == 403
        with pytest.raises(InvalidStatus) as missing:
            await ws_connect(
                server.ws_url + "/chat/completions",
                additional_headers={"Authorization": "Bearer x"},
            )
        assert missing.value.response.status_code == 404
        azure = f"ws://127.0.0.1:{server.port}/openai/realtime?api-version=2025-04-01-preview&deployment=my-dep"
        async with ws_connect(azure, additional_headers={"api-key": "azure-key"}) as ws:
            created = json.loads(await ws.recv())
        await server.wait_closed(3)

    assert [h.status for h in server.handshakes] == [403, 404, 101]
    assert set(server.closes) == {3}
    assert created["session"]["model"] == "my-dep"
    assert server.handshakes[2].headers["api-key"] == "azure-key"


async def test_log_holds_exact_frames_and_close_records() -> None:
    frames: list[str | bytes] = [
        '{"type": "session.update",   "session": {"type": "realtime", "instructions": "é"}}',
        '{"type":"input_audio_buffer.clear","event_id":"evt_clear"}',
        b'{"type":"input_audio_buffer.clear"}',
    ]
    async with FakeRealtimeServer() as server:
        headers = {"Authorization": "Bearer sk-test"}
        async with ws_connect(
            server.ws_url + "/realtime?model=gpt-realtime", additional_headers=headers
        ) as ws:
            received: list[str | bytes] = [await ws.recv()]
            for frame in frames:
                await ws.send(frame)
                received.append(await ws.recv())
            await server.send_raw(1, "injected text")
            await server.send_raw(1, b"\x01\x02")
            received += [await ws.recv(), await ws.recv()]
            await ws.close(4321, "client says bye")
        assert await server.wait_closed(1) == (4321, "client says bye", "client")

        async with ws_connect(server.ws_url + "/realtime", additional_headers=headers) as ws:
            await ws.recv()
            await server.close_connection(2, 4000, "server says bye")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert (ws.close_code, ws.close_reason) == (4000, "server says bye")
        assert server.closes[2] == (4000, "server says bye", "server")

    client_log = server.messages(1, "client")
    assert [m.data for m in client_log] == frames
    assert [type(m.data) for m in client_log] == [str, str, bytes]
    server_log = server.messages(1, "server")
    assert [m.data for m in server_log] == received
    assert [json.loads(r)["type"] for r in received[1:4] if isinstance(r, str)] == [
        "session.updated",
        "input_audio_buffer.cleared",
        "error",
    ]
    assert server_log[-1].data == b"\x01\x02"
    assert server_log[-1].event is None
    assert all(isinstance(m, LoggedMessage) and m.ts > 0 for m in server.log)
    assert server.messages(direction="server", conn_id=2)[0].event is not None


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside the SDK's sync client
def test_run_in_thread_with_sync_clients() -> None:
    with run_in_thread() as server:
        client = openai.OpenAI(api_key="sk-sync", base_url=server.base_url + "/v1")
        with client.realtime.connect(model="gpt-realtime") as conn:
            assert conn.recv().type == "session.created"
            server.call_threadsafe(
                server.send_raw(1, '{"type":"input_audio_buffer.cleared","event_id":"event_x"}')
            )
            assert conn.recv().type == "input_audio_buffer.cleared"
        assert server.call_threadsafe(server.wait_closed(1)) == (1000, "", "client")
        with sync_ws_connect(
            server.ws_url + "/realtime", additional_headers={"Authorization": "Bearer k"}
        ) as ws:
            ws.recv()
            server.call_threadsafe(server.close_connection(2, 1001, "going"))
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                ws.recv()
        assert server.closes[2] == (1001, "going", "server")
    with pytest.raises(RuntimeError):
        FakeRealtimeServer().call_threadsafe(asyncio.sleep(0))


async def test_stop_closes_open_connections_with_1001() -> None:
    server = FakeRealtimeServer()
    await server.start()
    headers = {"Authorization": "Bearer sk-test"}
    async with ws_connect(server.ws_url + "/realtime", additional_headers=headers) as ws:
        await ws.recv()
        await server.stop()
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1001
    assert server.closes[1] == (1001, "", "server")


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
                json.dumps({"type": "input_audio_buffer.append", "audio": b64(pcm16_sine(300))})
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
