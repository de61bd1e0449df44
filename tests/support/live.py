"""Raw WebSocket clients of the simulator's GPT-Live endpoint and checks of what it sends."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pydantic
from openai.types import live as live_types
from openai.types.responses import ResponseStreamEvent
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from simulator import FakeRealtimeServer
from simulator.audio import AudioFormat, bytes_per_ms
from tests.support.simulator import TIMEOUT, b64, unmodelled_keys

LIVE_SERVER = pydantic.TypeAdapter(live_types.ServerEvent)
RESPONSES_STREAM = pydantic.TypeAdapter(ResponseStreamEvent)
AUTH = {"Authorization": "Bearer sk-test"}
JSON = dict[str, Any]


def live_connect(
    server: FakeRealtimeServer, path: str = "/v1/live/sessions", headers: JSON | None = None
) -> Any:
    """A raw WebSocket to the simulator's Live endpoint, without frame-size limits as the SDK."""
    url = f"ws://127.0.0.1:{server.port}{path}"
    return ws_connect(url, additional_headers=AUTH if headers is None else headers, max_size=None)


async def send(ws: ClientConnection, event: JSON) -> None:
    await ws.send(json.dumps(event))


async def speak(ws: ClientConnection, audio: bytes, fmt: AudioFormat = "pcm16") -> None:
    """Stream ``audio`` as ``session.input_audio.append`` events of 100 ms each."""
    step = bytes_per_ms(fmt) * 100
    for start in range(0, len(audio), step):
        chunk = audio[start : start + step]
        await send(ws, {"type": "session.input_audio.append", "audio": b64(chunk)})


async def until(ws: ClientConnection, *types: str) -> list[JSON]:
    """Every event received until each of ``types`` has arrived (in any order)."""
    waiting, seen = list(types), []
    while waiting:
        event = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        seen.append(event)
        if event["type"] in waiting:
            waiting.remove(event["type"])
    return seen


def validate_live_event(event: JSON) -> str:
    """Validate one Live server event (and a nested Responses event) against the SDK's types,
    with no field the SDK does not model; returns its type."""
    model = LIVE_SERVER.validate_python(event)
    assert model.type == event["type"]
    assert unmodelled_keys(model) == [], (event["type"], unmodelled_keys(model))
    if event["type"] == "response.event":
        nested = RESPONSES_STREAM.validate_python(event["event"])
        assert unmodelled_keys(nested) == [], (event["event"]["type"], unmodelled_keys(nested))
    return event["type"]


def validate_live_events(server: FakeRealtimeServer, conn_id: int) -> list[JSON]:
    """Every frame the server sent on ``conn_id`` is a Live server event the SDK accepts."""
    sent = server.messages(conn_id, "server")
    assert sent
    events = []
    for message in sent:
        event = message.event
        assert event is not None, message.data
        validate_live_event(event)
        events.append(event)
    return events
