"""Sessions recorded for the dashboard tests, and reading its tables."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import openai
from sqlalchemy import select

from simulator.server import FakeRealtimeServer
from storage.db import make_engine
from storage.models import table
from tests.support.audio import sine_pcm16
from tests.support.proxy import event_of, proxy_runner

KEY = "sk-dashboard-test-key-0123456789"


WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


class Client:
    """The official SDK connection, sending raw events and reading until a wanted type."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def send(self, event: dict[str, Any]) -> None:
        await self.conn.send_raw(json.dumps(event))

    async def until(self, event_type: str) -> dict[str, Any]:
        while True:
            event = json.loads(await asyncio.wait_for(self.conn.recv_bytes(), 20))
            if event["type"] == event_type:
                return event

    async def say(self, text: str, **response: Any) -> dict[str, Any]:
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        }
        await self.send({"type": "conversation.item.create", "item": item})
        await self.send({"type": "response.create", **({"response": response} if response else {})})
        return await self.until("response.done")

    async def update(self, **session: Any) -> None:
        await self.send({"type": "session.update", "session": {"type": "realtime", **session}})
        await self.until("session.updated")

    async def speak(self, audio: bytes) -> None:
        for offset in range(0, len(audio), 4800):
            chunk = base64.b64encode(audio[offset : offset + 4800]).decode()
            await self.send({"type": "input_audio_buffer.append", "audio": chunk})


async def converse(conn: Any) -> None:
    """Text, voice, a tool call and its result, a barge-in, a client cancel and an error."""
    client = Client(conn)
    await client.until("session.created")
    await client.update(output_modalities=["text"], instructions=f"never reveal {KEY}")
    await client.say("What is the capital of France?")

    transcription = {"model": "gpt-4o-mini-transcribe"}
    audio_in = {"transcription": transcription, "turn_detection": None}
    await client.update(output_modalities=["audio"], audio={"input": audio_in})
    await client.speak(sine_pcm16(1200))
    await client.send({"type": "input_audio_buffer.commit"})
    await client.until("input_audio_buffer.committed")
    await client.send({"type": "response.create"})
    await client.until("response.done")

    call = await client.say(
        "What's the weather in Paris?", tools=[WEATHER_TOOL], tool_choice="required"
    )
    call_id = call["response"]["output"][0]["call_id"]
    output = {"type": "function_call_output", "call_id": call_id, "output": '{"temp_c": 21}'}
    await client.send({"type": "conversation.item.create", "item": output})
    await client.send({"type": "response.create"})
    await client.until("response.done")

    vad = {"type": "server_vad", "interrupt_response": True, "create_response": False}
    await client.update(audio={"input": {"turn_detection": vad}})
    await client.send({"type": "response.create"})
    await client.until("response.output_audio.delta")
    await client.speak(sine_pcm16(1000))
    await client.until("response.done")
    await client.send({"type": "input_audio_buffer.clear"})
    await client.until("input_audio_buffer.cleared")

    await client.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    created = await client.until("response.created")
    await client.send({"type": "response.cancel", "response_id": created["response"]["id"]})
    await client.until("response.done")
    await client.send({"type": "no.such.event", "event_id": "evt_bad_1"})
    await client.until("error")


async def record(db_url: str, log_dir: Path) -> list[dict[str, Any]]:
    """One conversation through a real `rtrec proxy`; returns the events the server sent."""
    async with FakeRealtimeServer(delta_interval_s=0.02) as server:
        with proxy_runner(log_dir) as run_proxy:
            proxy = run_proxy(server.base_url, db_url)
            client = openai.AsyncOpenAI(api_key=KEY, base_url=proxy.base_url)
            async with client.realtime.connect(model="gpt-realtime") as conn:
                await converse(conn)
            assert proxy.stop() == 0
        return [event_of(m) for m in server.messages(direction="server")]


def rows(db_url: str, model: type) -> list[Any]:
    engine = make_engine(db_url, read_only=True)
    with engine.connect() as connection:
        t = table(model)
        found = list(
            connection.execute(select(t).order_by(t.c.id if "id" in t.c else t.c.started_at))
        )
    engine.dispose()
    return found


def done_usages(sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["response"] for e in sent if e["type"] == "response.done"]


async def record_turns(db_url: str, log_dir: Path, turns: int, replay_of: str = "") -> None:
    """A session of `turns` short text answers through a real `rtrec proxy` (a long waterfall),
    marked as a replay of `replay_of` when given (as `rtrec replay` marks one)."""
    headers = {"Rtrec-Replay-Of": replay_of} if replay_of else {}
    async with FakeRealtimeServer(delta_interval_s=0.001) as server:
        with proxy_runner(log_dir) as run_proxy:
            proxy = run_proxy(server.base_url, db_url)
            client = openai.AsyncOpenAI(api_key=KEY, base_url=proxy.base_url)
            connection = client.realtime.connect(model="gpt-realtime", extra_headers=headers)
            async with connection as conn:
                talk = Client(conn)
                await talk.until("session.created")
                await talk.update(output_modalities=["text"])
                for number in range(turns):
                    await talk.say(f"Question {number + 1}?")
            assert proxy.stop() == 0
