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
#: What a sideband (``/attach``) receives: the primary events plus reflected audio, standby
#: and transport events.
LIVE_SIDEBAND = pydantic.TypeAdapter(live_types.ConnectServerEvent)
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


def validate_live_event(event: JSON, union: pydantic.TypeAdapter[Any] = LIVE_SERVER) -> str:
    """Validate one Live server event (and a nested Responses event) against the SDK's types
    (``union``: the primary socket's, or :data:`LIVE_SIDEBAND`), with no field the SDK does not
    model; returns its type."""
    model = union.validate_python(event)
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


class Sideband:
    """A raw sideband WebSocket (``/v1/live/sessions/{id}/attach``) that keeps every event it
    receives until the call ends it."""

    def __init__(self, base_url: str, session_id: str) -> None:
        ws_base = base_url.replace("http", "ws", 1)
        self.url = f"{ws_base}/v1/live/sessions/{session_id}/attach"
        self.events: list[JSON] = []
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Sideband:
        self._ws = await ws_connect(self.url, additional_headers=AUTH, max_size=None)
        self._reader = asyncio.create_task(self._read(self._ws))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._ws is not None
        assert self._reader is not None
        await self._ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)

    async def _read(self, ws: ClientConnection) -> None:
        async for message in ws:
            self.events.append(json.loads(message))

    async def send(self, event: JSON) -> None:
        assert self._ws is not None
        await self._ws.send(json.dumps(event))

    def of_type(self, kind: str) -> list[JSON]:
        return [event for event in self.events if event["type"] == kind]

    async def wait_for(self, kind: str, count: int = 1, timeout: float = TIMEOUT) -> list[JSON]:
        """The events of ``kind`` once ``count`` of them have arrived."""
        async with asyncio.timeout(timeout):
            while len(self.of_type(kind)) < count:
                await asyncio.sleep(0.02)
        return self.of_type(kind)

    async def ended(self, timeout: float = TIMEOUT) -> int | None:
        """Wait for the server to close the sideband; its close code."""
        assert self._ws is not None
        assert self._reader is not None
        await asyncio.wait_for(self._reader, timeout)
        return self._ws.close_code

    def validate(self) -> set[str]:
        """Every event received validates against the SDK's sideband union; their types."""
        assert self.events
        return {validate_live_event(event, LIVE_SIDEBAND) for event in self.events}
