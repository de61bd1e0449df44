"""A local fake of the OpenAI Realtime WebSocket service that logs every frame it sends/receives.

Built on the ``websockets`` asyncio server; listens on loopback only. GA event shapes by default,
beta shapes when the handshake carries ``OpenAI-Beta: realtime=v1`` or the subprotocol
``openai-beta.realtime-v1`` (docs/realtime-api.md#two-interfaces-ga-and-beta).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
import time
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import parse_qs

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.typing import Subprotocol

from simulator import events
from simulator.connection import SimConnection
from simulator.frame_log import CloseInfo, Direction, LoggedMessage, close_info
from simulator.handshake import (
    BETA_SUBPROTOCOL,
    Handshake,
    api_key_of,
    header_dict,
    is_live_path,
    offered_subprotocols,
)
from simulator.live_events import live_error
from simulator.live_session import LiveSession
from simulator.pacing import Pacing
from simulator.responses import RateLimitTracker
from simulator.state import ConnectionState

logger = logging.getLogger(__name__)


#: An API key that makes the server refuse the HTTP upgrade with 403.
REFUSE_UPGRADE_KEY = "sk-refuse-upgrade"
#: An API key that is accepted at the HTTP level, then rejected like a wrong key (close 3000).
INVALID_KEY = "sk-invalid"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: Largest accepted client frame (the real API documents a 15 MiB event limit).
MAX_FRAME_BYTES = 16 * 1024 * 1024


@dataclass
class _Accepted:
    handshake: Handshake
    api_key: str | None
    beta: bool
    transcription: bool
    model: str
    live: bool = False


class FakeRealtimeServer:
    """A fake OpenAI Realtime service for tests (and ``rtrec simulate``).

    Every frame is appended to :attr:`log` exactly as passed to / returned by ``websockets``;
    every upgrade request to :attr:`handshakes`; every closed connection to :attr:`closes`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        delta_interval_s: float = 0.0,
        audio_chunk_ms: int = 100,
        pacing: Pacing | None = None,
        keep_log: bool = True,
    ) -> None:
        """``pacing`` defaults to as fast as possible; ``delta_interval_s`` adds a pause after
        every delta on top of it. ``keep_log=False`` keeps no frames (a long-running server)."""
        if host not in _LOOPBACK_HOSTS:
            raise ValueError(f"the simulator only listens on loopback, not {host!r}")
        if audio_chunk_ms <= 0:
            raise ValueError("audio_chunk_ms must be positive")
        self.host = host
        self.delta_interval_s = delta_interval_s
        self.pacing = dataclasses.replace(pacing or Pacing(), extra_delay_s=delta_interval_s)
        self.audio_chunk_ms = audio_chunk_ms
        self.keep_log = keep_log
        self.log: list[LoggedMessage] = []
        self.handshakes: list[Handshake] = []
        self.closes: dict[int, CloseInfo] = {}
        self._requested_port = port
        self._port: int | None = None
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next_conn_id = 0
        self._by_connection: dict[ServerConnection, Handshake] = {}
        self._accepted: dict[ServerConnection, _Accepted] = {}
        self._connections: dict[int, ServerConnection] = {}
        self._send_locks: dict[int, asyncio.Lock] = {}
        self._closed_events: dict[int, asyncio.Event] = {}
        self._rate_limits = RateLimitTracker()

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("server already started")
        self._loop = asyncio.get_running_loop()
        self._server = await serve(
            self._handle,
            self.host,
            self._requested_port,
            process_request=self._process_request,
            process_response=self._process_response,
            select_subprotocol=self._select_subprotocol,
            server_header=None,
            max_size=MAX_FRAME_BYTES,
            close_timeout=5,
        )
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and close every open connection with 1001 (going away)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``; the SDK's ``base_url`` is this + ``/v1``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT/v1``, for the SDK's ``websocket_base_url`` (needed for beta)."""
        return "ws" + self.base_url.removeprefix("http") + "/v1"

    # ----------------------------------------------------------------- inspection
    def messages(
        self, conn_id: int | None = None, direction: str | None = None
    ) -> list[LoggedMessage]:
        return [
            m
            for m in list(self.log)
            if (conn_id is None or m.conn_id == conn_id)
            and (direction is None or m.direction == direction)
        ]

    def events(
        self, conn_id: int | None = None, direction: str | None = None
    ) -> list[dict[str, Any]]:
        """The parsed JSON objects of :meth:`messages` (other frames are skipped)."""
        return [e for m in self.messages(conn_id, direction) if (e := m.event) is not None]

    async def wait_closed(self, conn_id: int, timeout: float = 5.0) -> CloseInfo:
        """Wait until connection ``conn_id`` is closed and recorded in :attr:`closes`."""
        event = self._closed_events.setdefault(conn_id, asyncio.Event())
        await asyncio.wait_for(event.wait(), timeout)
        return self.closes[conn_id]

    # ----------------------------------------------------------------- control
    async def send_raw(self, conn_id: int, data: str | bytes) -> None:
        """Send any frame (text for ``str``, binary for ``bytes``) on a connection; it is logged."""
        await self._send(conn_id, data)

    async def close_connection(self, conn_id: int, code: int = 1000, reason: str = "") -> None:
        """Close a connection from the server side and wait until the close is recorded."""
        ws = self._connections.get(conn_id)
        if ws is None:
            raise KeyError(f"no open connection {conn_id}")
        await ws.close(code, reason)
        await self.wait_closed(conn_id, timeout=10.0)

    def call_threadsafe[T](self, coro: Coroutine[Any, Any, T], timeout: float | None = 10.0) -> T:
        """Run ``coro`` on the server's event loop from another thread and return its result."""
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("server not started")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coro.close()
            raise RuntimeError("call_threadsafe() called from the server's own event loop")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    # ----------------------------------------------------------------- websockets hooks
    def _select_subprotocol(
        self, connection: ServerConnection, subprotocols: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        return Subprotocol("realtime") if "realtime" in subprotocols else None

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self._next_conn_id += 1
        headers = header_dict(request.headers)
        subprotocols = offered_subprotocols(request.headers)
        handshake = Handshake(self._next_conn_id, request.path, headers, subprotocols)
        self.handshakes.append(handshake)
        self._by_connection[connection] = handshake
        route, _, raw_query = request.path.partition("?")
        live = is_live_path(route)
        if not live and not route.endswith("/realtime"):
            return connection.respond(404, "Not Found\n")
        query = parse_qs(raw_query, keep_blank_values=True)
        api_key = api_key_of(headers, subprotocols, query)
        if api_key == REFUSE_UPGRADE_KEY:
            body = {
                "error": {
                    "message": "The WebSocket upgrade was refused (simulated).",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "upgrade_refused",
                }
            }
            response = connection.respond(403, json.dumps(body) + "\n")
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = "application/json"
            return response
        model = (query.get("model") or query.get("deployment") or [""])[0] or events.DEFAULT_MODEL
        beta = "realtime=v1" in headers.get("openai-beta", "").replace(" ", "") or (
            BETA_SUBPROTOCOL in subprotocols
        )
        transcription = (query.get("intent") or [""])[0] == "transcription"
        self._accepted[connection] = _Accepted(handshake, api_key, beta, transcription, model, live)
        return None

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> None:
        handshake = self._by_connection.pop(connection, None)
        if handshake is not None:
            handshake.status = response.status_code
        if response.status_code != 101:
            self._accepted.pop(connection, None)

    # ----------------------------------------------------------------- connections
    def _record(self, conn_id: int, direction: Direction, data: str | bytes) -> None:
        if self.keep_log:
            self.log.append(LoggedMessage(conn_id, direction, data, time.time()))

    async def _send(self, conn_id: int, data: str | bytes) -> None:
        ws = self._connections.get(conn_id)
        if ws is None:
            raise KeyError(f"no open connection {conn_id}")
        async with self._send_locks[conn_id]:
            await ws.send(data)
            self._record(conn_id, "server", data)

    async def _handle(self, ws: ServerConnection) -> None:
        accepted = self._accepted.pop(ws, None)
        if accepted is None:  # pragma: no cover - process_request always registers upgrades
            await ws.close(1011, "unexpected connection")
            return
        conn_id = accepted.handshake.conn_id
        self._connections[conn_id] = ws
        self._send_locks[conn_id] = asyncio.Lock()
        closed = self._closed_events.setdefault(conn_id, asyncio.Event())

        sim = self._handler(accepted)
        try:
            if accepted.api_key is None or accepted.api_key == INVALID_KEY:
                await self._reject_auth(ws, sim, accepted.api_key)
            else:
                await sim.open()
                async for message in ws:
                    self._record(conn_id, "client", message)
                    await sim.handle(message)
                    if isinstance(sim, LiveSession) and sim.ended is not None:
                        await ws.close(*sim.ended)  # the Live session is over
        except ConnectionClosed:
            pass
        except Exception:
            logger.exception("simulator connection %d failed", conn_id)
            if ws.state is State.OPEN:
                await ws.close(1011, "simulator error")
        finally:
            await sim.shutdown()
            if ws.state is not State.CLOSED:
                await ws.wait_closed()
            self.closes[conn_id] = close_info(ws)
            self._connections.pop(conn_id, None)
            self._send_locks.pop(conn_id, None)
            closed.set()

    def _handler(self, accepted: _Accepted) -> SimConnection | LiveSession:
        """The protocol side of a new connection: a GPT-Live session or a Realtime connection."""
        conn_id = accepted.handshake.conn_id

        async def send_text(text: str) -> None:
            await self._send(conn_id, text)

        async def send_event(event: dict[str, Any]) -> None:
            await send_text(json.dumps(event, separators=(",", ":"), ensure_ascii=False))

        if accepted.live:
            return LiveSession(send_event, pacing=self.pacing, chunk_ms=self.audio_chunk_ms)
        return SimConnection(
            ConnectionState(
                beta=accepted.beta,
                transcription=accepted.transcription,
                model=accepted.model,
                send_text=send_text,
                rate_limits=self._rate_limits,
                pacing=self.pacing,
                audio_chunk_ms=self.audio_chunk_ms,
            )
        )

    async def _reject_auth(
        self, ws: ServerConnection, sim: SimConnection | LiveSession, key: str | None
    ) -> None:
        """Auth failures arrive after the 101: an ``error`` frame, then close 3000
        (docs/realtime-api.md#errors)."""
        if key is None:
            code = "missing_bearer"
            message = (
                "You must provide an API key. Pass it in the Authorization header "
                "(Authorization: Bearer YOUR_KEY), the api-key header, or the "
                "openai-insecure-api-key.<key> subprotocol."
            )
        else:
            code = "invalid_api_key"
            message = f"Incorrect API key provided: {key}."
        if isinstance(sim, LiveSession):
            await sim.emit(live_error(code, message))
        else:
            await sim.state.send_error(code, message, None, None)
        await ws.close(3000, f"invalid_request_error.{code}")


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()


@contextmanager
def run_in_thread(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    delta_interval_s: float = 0.0,
    audio_chunk_ms: int = 100,
    pacing: Pacing | None = None,
) -> Iterator[FakeRealtimeServer]:
    """A started :class:`FakeRealtimeServer` running its own event loop in a daemon thread.

    Use :meth:`FakeRealtimeServer.call_threadsafe` to run its coroutines from the caller's thread,
    e.g. ``server.call_threadsafe(server.send_raw(1, "..."))``.
    """
    server = FakeRealtimeServer(
        host, port, delta_interval_s=delta_interval_s, audio_chunk_ms=audio_chunk_ms, pacing=pacing
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=_run_loop, args=(loop,), name="fake-realtime", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=10)
        yield server
    finally:
        try:
            if server._server is not None:
                asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=15)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            if not thread.is_alive():
                loop.close()
