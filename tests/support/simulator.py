"""SDK clients of the simulator and checks of what it sends."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import openai
import pydantic
from openai.types import realtime as ga_types
from openai.types.beta import realtime as beta_types

from simulator import FakeRealtimeServer

GA_SERVER = pydantic.TypeAdapter(ga_types.RealtimeServerEvent)


BETA_SERVER = pydantic.TypeAdapter(beta_types.RealtimeServerEvent)


BETA_MODEL = "gpt-4o-realtime-preview-2025-06-03"


#: Keys the SDK does not model but the real wire carries
#: (docs/realtime-api.md#gotchas-the-parser-handles).
ALLOWED_EXTRAS = ("obfuscation", "session.object", "session.id", "session.expires_at")


TIMEOUT = 5.0


JSON = dict[str, Any]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unmodelled_keys(value: Any, path: str = "") -> list[str]:
    """Keys the SDK model did not declare (they land in ``model_extra``), recursively."""
    found: list[str] = []
    if isinstance(value, pydantic.BaseModel):
        found += [f"{path}.{key}".lstrip(".") for key in (value.model_extra or {})]
        for name in type(value).model_fields:
            found += unmodelled_keys(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, list):
        for index, entry in enumerate(value):
            found += unmodelled_keys(entry, f"{path}[{index}]")
    return found


def validate_server_events(server: FakeRealtimeServer, conn_id: int, *, beta: bool) -> list[JSON]:
    """Every frame the server sent on ``conn_id`` is a JSON event the SDK union accepts."""
    adapter = BETA_SERVER if beta else GA_SERVER
    allowed = (*ALLOWED_EXTRAS, "cached_tokens_details") if beta else ALLOWED_EXTRAS
    sent = server.messages(conn_id, "server")
    assert sent
    out: list[JSON] = []
    for message in sent:
        event = message.event
        assert event is not None, message.data
        model = adapter.validate_python(event)
        assert model.type == event["type"]
        extras = [k for k in unmodelled_keys(model) if not k.endswith(allowed)]
        assert extras == [], (event["type"], extras)
        out.append(event)
    return out


def check_usage(usage: JSON, *, beta: bool) -> None:
    itd, otd = usage["input_token_details"], usage["output_token_details"]
    ctd = itd["cached_tokens_details"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["input_tokens"] == itd["text_tokens"] + itd["audio_tokens"] + itd.get(
        "image_tokens", 0
    )
    assert usage["output_tokens"] == otd["text_tokens"] + otd["audio_tokens"]
    assert itd["cached_tokens"] == sum(ctd.values())
    for key, cached in ctd.items():
        assert 0 <= cached <= itd[key]
    assert ("image_tokens" in itd) is not beta
    assert ("image_tokens" in ctd) is not beta


def done_usages(events: list[JSON], *, beta: bool) -> list[JSON]:
    usages = []
    for event in events:
        if event["type"] == "response.done" and event["response"]["usage"] is not None:
            check_usage(event["response"]["usage"], beta=beta)
            usages.append(event["response"]["usage"])
    return usages


class Recorder:
    """Wraps an SDK connection: remembers what was sent and the types ``recv()`` returned."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.sent: list[JSON] = []
        self.received: list[Any] = []

    async def send(self, event: JSON) -> None:
        self.sent.append(event)
        await self.conn.send(event)

    async def recv(self) -> Any:
        event = await asyncio.wait_for(self.conn.recv(), TIMEOUT)
        self.received.append(event)
        return event

    async def until(self, event_type: str) -> list[Any]:
        got = []
        while True:
            event = await self.recv()
            got.append(event)
            if event.type == event_type:
                return got

    @property
    def types(self) -> list[str]:
        return [e.type for e in self.received]


def ga_client(server: FakeRealtimeServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="sk-test-key", base_url=server.base_url + "/v1")


def beta_client(server: FakeRealtimeServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key="sk-test-key", base_url=server.base_url + "/v1", websocket_base_url=server.ws_url
    )


async def finish(
    server: FakeRealtimeServer, rec: Recorder, conn_id: int, *, beta: bool
) -> list[JSON]:
    """After the client closed: SDK saw what the server logged, the log holds what was sent."""
    await server.wait_closed(conn_id)
    events = validate_server_events(server, conn_id, beta=beta)
    assert rec.types == [e["type"] for e in events]
    assert [m.event for m in server.messages(conn_id, "client")] == rec.sent
    return events
