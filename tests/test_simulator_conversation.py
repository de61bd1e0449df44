"""The simulator's conversation operations: cancels, client errors, item edits, failed responses."""

from __future__ import annotations

import base64
import json

from simulator import FakeRealtimeServer
from tests.support.simulator import (
    Recorder,
    check_usage,
    finish,
    ga_client,
    validate_server_events,
)


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
