"""The sideband of a call (``wss /v1/realtime?call_id=rtc_...``): the application's server sees
every server event of the call and may send client events, until the call ends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from urllib.parse import parse_qs

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from simulator.calls import Call, CallRegistry
from simulator.handshake import api_key_of, header_dict, offered_subprotocols

logger = logging.getLogger(__name__)


_LIVE_ATTACH = re.compile(r"/v1/live/sessions/(live_\w+)/attach$")


def call_id_of(path: str) -> str | None:
    """The call a sideband path names: ``/v1/realtime?call_id=rtc_...`` or GPT-Live's
    ``/v1/live/sessions/live_.../attach``; ``None`` for any other path."""
    route, _, query = path.partition("?")
    if route.endswith("/realtime"):
        values = parse_qs(query).get("call_id")
        return values[0] if values else None
    live = _LIVE_ATTACH.search(route)
    return live.group(1) if live else None


def _error(connection: ServerConnection, status: int, code: str, message: str) -> Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    response = connection.respond(status, json.dumps(body) + "\n")
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response


class SidebandServer:
    """An internal loopback WebSocket server for call sidebands (reached through the front door)."""

    def __init__(self, registry: CallRegistry) -> None:
        self._registry = registry
        self._server: Server | None = None
        self._calls: dict[ServerConnection, Call] = {}
        self.port = 0

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            server_header=None,
            max_size=None,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        headers = header_dict(request.headers)
        query = parse_qs(request.path.partition("?")[2])
        if api_key_of(headers, offered_subprotocols(request.headers), query) is None:
            return _error(connection, 401, "missing_bearer", "You must provide an API key.")
        call = self._registry.calls.get(call_id_of(request.path) or "")
        api = "live" if "/live/" in request.path else "realtime"
        if call is None or call.ended.is_set() or call.api != api:
            return _error(connection, 404, "call_not_found", "No active call with that id.")
        self._calls[connection] = call
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        call = self._calls.pop(ws)
        call.sidebands.add(ws.send)
        ended = asyncio.create_task(call.ended.wait())
        try:
            reader = asyncio.create_task(self._read(ws, call))
            await asyncio.wait({ended, reader}, return_when=asyncio.FIRST_COMPLETED)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        finally:
            ended.cancel()
            call.sidebands.discard(ws.send)
            await ws.close(1000, "call ended" if call.ended.is_set() else "")

    async def _read(self, ws: ServerConnection, call: Call) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                if isinstance(message, str):
                    await call.session.handle(message)
