"""One loopback port for the whole simulator: plain HTTP requests (the call endpoints, which carry
bodies that ``websockets`` refuses) go to a handler; WebSocket upgrades are spliced to the internal
``websockets`` server that owns their path."""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

#: The largest request head and body the front door reads (SDP offers are a few KiB).
MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024


@dataclass
class HttpRequest:
    """A plain HTTP request; header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpResponse:
    """What the handler answers; ``Content-Length`` and ``Connection: close`` are added."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


HttpHandler = Callable[[HttpRequest], Awaitable[HttpResponse]]
#: The internal port that serves a WebSocket path (with its query).
WebSocketRoute = Callable[[str], int]


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, path, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return method, path, headers


def _encode(response: HttpResponse) -> bytes:
    reason = http.HTTPStatus(response.status).phrase
    headers = {**response.headers, "Content-Length": str(len(response.body))}
    headers["Connection"] = "close"
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, RuntimeError):
            writer.close()


class FrontDoor:
    """Listens on one loopback port and routes each connection by its first request."""

    def __init__(self, host: str, port: int, handler: HttpHandler, route: WebSocketRoute) -> None:
        self.host = host
        self._requested_port = port
        self._handler = handler
        self._route = route
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self._requested_port, limit=MAX_HEAD_BYTES
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for writer in list(self._writers):  # Python 3.12's Server has no close_clients()
                writer.close()
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._serve_one(reader, writer)
        finally:
            self._writers.discard(writer)

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, path, headers = _parse_head(head[:-4])
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            writer.close()
            return
        if headers.get("upgrade", "").lower() == "websocket":
            await self._splice(head, path, reader, writer)
            return
        try:
            length = int(headers.get("content-length", "0"))
            if not 0 <= length <= MAX_BODY_BYTES:
                raise ValueError(length)
            body = await reader.readexactly(length)
            response = await self._handler(HttpRequest(method, path, headers, body))
        except (ValueError, asyncio.IncompleteReadError):
            response = HttpResponse(400, b"bad request\n")
        except Exception:
            logger.exception("simulator HTTP handler failed for %s %s", method, path)
            response = HttpResponse(500, b"simulator error\n")
        with contextlib.suppress(ConnectionError):
            writer.write(_encode(response))
            await writer.drain()
        writer.close()

    async def _splice(
        self, head: bytes, path: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Hand the upgrade to the internal WebSocket server, byte for byte, both ways."""
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._route(path))
        except OSError:
            writer.close()
            return
        up_writer.write(head)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
