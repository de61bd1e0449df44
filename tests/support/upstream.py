"""A scripted stand-in for OpenAI's Realtime service: the test decides each answer (model, text,
audio length, tool calls, usage, errors), or that the service never answers or refuses, so that
replays can meet regressions the deterministic simulator cannot produce."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from tests.support.net import free_port

PCM16_BYTES_PER_MS = 48  # 24 kHz, 16-bit mono
DEFAULT_QUESTION = ""


@dataclass
class Answer:
    """What one `response.create` gets back."""

    text: str = "It is sunny in Paris."
    audio_ms: int = 600  # 0: a text-only answer
    tool_call: tuple[str, str] | None = None  # (name, JSON arguments) instead of the text
    input_tokens: int = 100
    output_tokens: int = 900
    error_code: str | None = None  # an `error` event sent before the response


@dataclass
class ScriptedUpstream:
    """The service's behaviour, changeable by the test between a recording and its replay.

    `answers` maps the latest user text to its answer (`DEFAULT_QUESTION` for any other)."""

    model: str = "gpt-realtime"
    answers: dict[str, Answer] = field(default_factory=lambda: {DEFAULT_QUESTION: Answer()})
    silent: bool = False  # accept the WebSocket, then never send anything
    refuse_status: int | None = None  # answer the upgrade with this HTTP status instead
    port: int = field(default_factory=free_port)
    connections: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer_for(self, question: str) -> Answer:
        return self.answers.get(question, self.answers[DEFAULT_QUESTION])

    def _refuse(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.refuse_status is None:
            return None
        body = json.dumps({"error": {"type": "invalid_request_error", "code": "refused"}})
        headers = Headers({"Content-Type": "application/json"})
        return Response(self.refuse_status, "Refused", headers, body.encode())

    async def _serve(self, connection: ServerConnection) -> None:
        self.connections += 1
        if self.silent:
            async for _ in connection:
                pass
            return
        await _Conversation(self, connection).run()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ScriptedUpstream]:
        server: Server = await serve(
            self._serve, "127.0.0.1", self.port, process_request=self._refuse, max_size=None
        )
        async with server:
            yield self


class _Conversation:
    """One connection: a session, its items, and scripted responses to `response.create`."""

    def __init__(self, upstream: ScriptedUpstream, connection: ServerConnection) -> None:
        self.upstream = upstream
        self.connection = connection
        self.ids = itertools.count(1)
        self.question = DEFAULT_QUESTION
        self.session: dict[str, Any] = {"type": "realtime", "model": upstream.model}
        self.session.update(id="sess_scripted", output_modalities=["audio"])

    async def send(self, kind: str, **fields: Any) -> None:
        await self.connection.send(json.dumps({"type": kind, "event_id": self.id("ev"), **fields}))

    def id(self, prefix: str) -> str:
        return f"{prefix}_{next(self.ids)}"

    async def run(self) -> None:
        await self.send("session.created", session=self.session)
        async for message in self.connection:
            event = json.loads(message)
            kind = event.get("type")
            if kind == "session.update":
                self.session.update(event.get("session") or {})
                self.session["model"] = self.upstream.model
                await self.send("session.updated", session=self.session)
            elif kind == "conversation.item.create":
                await self._item(event.get("item") or {})
            elif kind == "response.create":
                await self._respond(self.upstream.answer_for(self.question))

    async def _item(self, item: dict[str, Any]) -> None:
        for part in item.get("content") or []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                self.question = part["text"]
        await self.send("conversation.item.added", item={**item, "id": self.id("item")})

    async def _respond(self, answer: Answer) -> None:
        if answer.error_code:
            error = {"type": "invalid_request_error", "code": answer.error_code, "message": "no"}
            await self.send("error", error=error)
        response_id = self.id("resp")
        await self.send("response.created", response={"id": response_id, "status": "in_progress"})
        output = await self._output(answer, response_id)
        usage = {
            "total_tokens": answer.input_tokens + answer.output_tokens,
            "input_tokens": answer.input_tokens,
            "output_tokens": answer.output_tokens,
            "input_token_details": {"text_tokens": answer.input_tokens, "audio_tokens": 0},
            "output_token_details": {
                "text_tokens": answer.output_tokens if not answer.audio_ms else 0,
                "audio_tokens": answer.output_tokens if answer.audio_ms else 0,
            },
        }
        response = {"id": response_id, "status": "completed", "output": output, "usage": usage}
        await self.send("response.done", response=response)

    async def _output(self, answer: Answer, response_id: str) -> list[dict[str, Any]]:
        item_id = self.id("item")
        if answer.tool_call:
            name, arguments = answer.tool_call
            call = {"type": "function_call", "id": item_id, "call_id": self.id("call")}
            return [{**call, "name": name, "arguments": arguments, "status": "completed"}]
        if not answer.audio_ms:
            part = {"type": "output_text", "text": answer.text}
            return [{"type": "message", "id": item_id, "role": "assistant", "content": [part]}]
        audio = base64.b64encode(bytes(answer.audio_ms * PCM16_BYTES_PER_MS)).decode()
        where = {"response_id": response_id, "item_id": item_id, "output_index": 0}
        await self.send("response.output_audio.delta", **where, content_index=0, delta=audio)
        await self.send(
            "response.output_audio_transcript.delta", **where, content_index=0, delta=answer.text
        )
        part = {"type": "output_audio", "transcript": answer.text}
        return [{"type": "message", "id": item_id, "role": "assistant", "content": [part]}]
