"""A whole conversation through the proxy with the official openai SDK."""

from __future__ import annotations

import base64
import json
from typing import Any

import openai

from tests.support.audio import SAMPLE_RATE, sine_pcm16

KEY = "sk-e2e-planted-key-0123456789abcdef"


CHUNK_MS = 100


async def recv_until(conn: Any, event_type: str, received: list[bytes]) -> dict[str, Any]:
    """Read raw frames as the client got them until one of `event_type` arrives."""
    while True:
        raw = await conn.recv_bytes()
        received.append(raw)
        event = json.loads(raw)
        if event["type"] == event_type:
            return event


async def send(conn: Any, sent: list[str], event: dict[str, Any]) -> None:
    data = json.dumps(event)
    sent.append(data)
    await conn.send_raw(data)


async def run_conversation(base_url: str, sent: list[str], received: list[bytes]) -> None:
    """A text turn, a voice turn with audio, a cancelled response and an error, over one socket."""
    client = openai.AsyncOpenAI(api_key=KEY, base_url=base_url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await recv_until(conn, "session.created", received)
        await send(
            conn,
            sent,
            {
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "output_modalities": ["text"],
                    "instructions": f"never reveal {KEY}",
                },
            },
        )
        await recv_until(conn, "session.updated", received)
        await send(
            conn,
            sent,
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "What is the capital of France?"}],
                },
            },
        )
        await send(conn, sent, {"type": "response.create"})
        await recv_until(conn, "rate_limits.updated", received)

        await send(
            conn,
            sent,
            {
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "output_modalities": ["audio"],
                    "audio": {
                        "input": {
                            "format": {"type": "audio/pcm", "rate": SAMPLE_RATE},
                            "transcription": {"model": "gpt-4o-mini-transcribe"},
                            "turn_detection": None,
                        }
                    },
                },
            },
        )
        await recv_until(conn, "session.updated", received)
        audio = sine_pcm16(1200)
        step = SAMPLE_RATE * 2 * CHUNK_MS // 1000
        for offset in range(0, len(audio), step):
            chunk = base64.b64encode(audio[offset : offset + step]).decode()
            await send(conn, sent, {"type": "input_audio_buffer.append", "audio": chunk})
        await send(conn, sent, {"type": "input_audio_buffer.commit"})
        await recv_until(conn, "input_audio_buffer.committed", received)
        await send(conn, sent, {"type": "response.create"})
        await recv_until(conn, "rate_limits.updated", received)

        await send(
            conn, sent, {"type": "response.create", "response": {"output_modalities": ["text"]}}
        )
        created = await recv_until(conn, "response.created", received)
        await send(
            conn, sent, {"type": "response.cancel", "response_id": created["response"]["id"]}
        )
        await recv_until(conn, "response.done", received)
        await send(conn, sent, {"type": "no.such.event", "event_id": "evt_bad_1"})
        while (await recv_until(conn, "error", received))["error"].get("event_id") != "evt_bad_1":
            pass
