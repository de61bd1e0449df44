"""The three things rtrec needs from mitmproxy 12 that it has no public API for.

- An own answer to a failed upstream connection: mitmproxy writes a fixed HTML page
  (`proxy/layers/http/_http1.py` `make_error_response`, sent at `Http1Server.send`) and ignores a
  `flow.response` set in the `error` hook (`HttpStream.handle_protocol_error` never reads it).
- A close frame to both peers of a live WebSocket: `flow.kill()` is never looked at by the
  WebSocket layer (`proxy/layers/websocket.py` `relay_messages`; see the TODO in `flow.py`
  `Flow.kill`), and `inject.websocket` injects messages only.

Both reach into mitmproxy's internals, here and nowhere else. Each checks what it relies on first
and, when mitmproxy has changed, does nothing: mitmproxy then behaves as it does without rtrec
(its HTML 502; connections cut when the process ends; its WebSocket layer and hooks for every
WebSocket). tests/test_mitm_internals.py pins them.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import wsproto.events
from mitmproxy import http
from mitmproxy.connection import ConnectionState
from mitmproxy.net.http import http1
from mitmproxy.proxy import events, layer
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.layers import http as http_layers
from mitmproxy.proxy.layers import websocket
from mitmproxy.proxy.layers.websocket import WebsocketLayer, WebSocketMessageInjected
from mitmproxy.websocket import WebSocketMessage
from wsproto.frame_protocol import Opcode

from proxy.raw_relay import CLOSED_BY_PROXY_KEY, CloseInjected, RawRelayLayer, RawSink

logger = logging.getLogger(__name__)

__all__ = ["CLOSED_BY_PROXY_KEY", "RAW_RELAY_KEY", "close_websockets", "use_raw_relay"]

#: Set (True) in `flow.metadata` by the `response` hook of a 101 that rtrec's layer relays.
RAW_RELAY_KEY = "rtrec_raw_relay"
# What `HttpStream.flow_done` must still say for the stand-in to be the layer it builds.
_BUILDS_WEBSOCKET_LAYER = "websocket.WebsocketLayer(self.context, self.flow)"


class _WebsocketModule:
    """Stands in for `mitmproxy.proxy.layers.websocket` inside mitmproxy's HTTP layer: the same
    module, except that `WebsocketLayer(context, flow)` builds rtrec's layer for marked flows."""

    def __init__(self, sink: RawSink) -> None:
        self.sink = sink

    def __getattr__(self, name: str) -> Any:
        return getattr(websocket, name)

    def WebsocketLayer(self, context: Context, flow: http.HTTPFlow) -> layer.Layer:  # noqa: N802
        if flow.metadata.get(RAW_RELAY_KEY):
            return RawRelayLayer(context, flow, self.sink)
        return WebsocketLayer(context, flow)


def use_raw_relay(sink: RawSink) -> bool:
    """Build `RawRelayLayer`s, feeding `sink`, for the upgrades marked with `RAW_RELAY_KEY`.
    False (and mitmproxy's own layer for every WebSocket) when mitmproxy no longer builds its
    layer where rtrec expects."""
    try:
        current = getattr(http_layers, "websocket", None)
        if isinstance(current, _WebsocketModule):
            current.sink = sink
            return True
        source = inspect.getsource(http_layers.HttpStream.flow_done)
        if current is not websocket or _BUILDS_WEBSOCKET_LAYER not in source:
            logger.warning("mitmproxy changed: WebSockets go through its own, slower layer")
            return False
        setattr(http_layers, "websocket", _WebsocketModule(sink))  # noqa: B010
    except Exception:  # a mitmproxy change must cost speed, nothing more
        logger.warning("cannot relay WebSockets raw; using mitmproxy's layer", exc_info=True)
        return False
    return True


def stop_raw_relay() -> None:
    """Undo `use_raw_relay` (tests that run several proxies in one process)."""
    if isinstance(getattr(http_layers, "websocket", None), _WebsocketModule):
        setattr(http_layers, "websocket", websocket)  # noqa: B010


def answer_failed_connect(proxyserver: Any, flow: http.HTTPFlow, response: http.Response) -> bool:
    """From the `error` hook: send `response` to the client in place of mitmproxy's HTML page.
    False when it cannot (TLS or HTTP/2 client, internals changed): mitmproxy's page goes out."""
    try:
        return _answer_failed_connect(proxyserver, flow, response)
    except Exception:  # a mitmproxy change must cost the JSON body, nothing more
        logger.debug("cannot answer with rtrec's own response", exc_info=True)
        return False


def _answer_failed_connect(proxyserver: Any, flow: http.HTTPFlow, response: http.Response) -> bool:
    if flow.client_conn.tls or not flow.request.http_version.startswith("HTTP/1"):
        return False  # bytes on the socket would bypass TLS / HTTP/2 framing
    if not flow.killable or flow.client_conn.state is not ConnectionState.OPEN:
        return False  # the client went away, or mitmproxy already answered and closed it
    try:
        handler = proxyserver.connections[flow.client_conn.id]
        writer = handler.transports[flow.client_conn].writer
    except (AttributeError, KeyError, TypeError):
        return False
    if not isinstance(writer, asyncio.StreamWriter) or writer.is_closing():
        return False
    writer.write(http1.assemble_response(response))  # type: ignore[no-untyped-call]
    # A flow killed during `error` makes the HTTP layer close the connection without a page of
    # its own (`HttpStream.check_killed`: `ResponseProtocolError(KILL)` has no status code).
    flow.kill()  # type: ignore[no-untyped-call]
    return True


class _CloseInjected(WebSocketMessageInjected):
    """Routed to a flow's WebSocket layer like an injected message; starts its close instead."""


def close_websockets(proxyserver: Any, code: int, reason: str) -> list[http.HTTPFlow]:
    """Start the close of every live WebSocket: a close frame (`code`, `reason`) to both peers,
    then both connections closed, as when a peer closes. The flows whose close was started."""
    started = []
    for ws_layer in _live_websocket_layers(proxyserver):
        try:
            if isinstance(ws_layer, RawRelayLayer):
                proxyserver.inject_event(CloseInjected(ws_layer.flow, code, reason))
            else:
                _start_close(proxyserver, ws_layer, code, reason)
        except Exception:
            logger.debug("cannot close %s with a close frame", ws_layer.flow, exc_info=True)
        else:
            started.append(ws_layer.flow)
    return started


async def close_websockets_and_wait(
    proxyserver: Any, code: int, reason: str, timeout_s: float
) -> int:
    """`close_websockets`, then wait (at most `timeout_s`) until their connections are closed,
    which hands the close frames to the kernel. How many were closed; 0 when it cannot."""
    try:
        flows = close_websockets(proxyserver, code, reason)
        clients = {flow.client_conn.id for flow in flows}
        deadline = time.monotonic() + timeout_s
        while clients and clients & set(proxyserver.connections) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    except Exception:  # a mitmproxy change must not stop the shutdown
        logger.warning("could not send close frames; connections end without one", exc_info=True)
        return 0
    return len(flows)


def _start_close(proxyserver: Any, ws_layer: WebsocketLayer, code: int, reason: str) -> None:
    relay = ws_layer._handle_event
    client_ws, client = ws_layer.client_ws, ws_layer.context.client

    def close_or_relay(event: events.Event) -> Any:
        if not isinstance(event, _CloseInjected):
            return relay(event)
        # Queued before anything the client sent, the close goes through mitmproxy's own
        # handling of a client's close (websocket.py, the CloseConnection branch): a close frame
        # to each peer, both connections closed, `websocket_end`, the layer done.
        client_ws._events.appendleft(wsproto.events.CloseConnection(code, reason))
        ws_layer.flow.metadata[CLOSED_BY_PROXY_KEY] = True
        return relay(events.DataReceived(client, b""))

    # The layer replaces its `_handle_event` with `done` when a peer closes first: then the
    # injected event finds `done`, which ignores it.
    ws_layer._handle_event = close_or_relay
    proxyserver.inject_event(
        _CloseInjected(ws_layer.flow, WebSocketMessage(Opcode.TEXT, True, b""))
    )


def _live_websocket_layers(proxyserver: Any) -> list[WebsocketLayer | RawRelayLayer]:
    """Every WebSocket layer still relaying, found by walking each connection's layer tree."""
    found = []
    try:
        handlers = list(proxyserver.connections.values())
        for handler in handlers:
            for ws_layer in _websocket_layers(handler.layer):
                if _is_relaying(ws_layer):
                    found.append(ws_layer)
    except Exception:
        logger.debug("cannot find the live WebSockets", exc_info=True)
        return []
    return found


def _is_relaying(ws_layer: WebsocketLayer | RawRelayLayer) -> bool:
    if isinstance(ws_layer, RawRelayLayer):
        return ws_layer.relaying and ws_layer.flow.live
    relay: Callable[..., Any] | None = getattr(ws_layer, "_handle_event", None)
    return (
        getattr(relay, "__func__", None) is WebsocketLayer.relay_messages
        and ws_layer.flow.live
        and hasattr(ws_layer, "client_ws")
        and isinstance(getattr(ws_layer.client_ws, "_events", None), deque)
    )


def _websocket_layers(root: layer.Layer) -> Iterator[WebsocketLayer | RawRelayLayer]:
    """Layers hold their children as `layer` (NextLayer), `child_layer`, `streams` (HttpLayer)
    or only as the bound `_handle_event` they delegate to (HttpProxy)."""
    seen: set[int] = set()
    pending: list[object] = [root]
    while pending:
        node = pending.pop()
        if id(node) in seen or not isinstance(node, layer.Layer):
            continue
        seen.add(id(node))
        if isinstance(node, WebsocketLayer | RawRelayLayer):
            yield node
            continue
        pending.append(getattr(node, "layer", None))
        pending.append(getattr(node, "child_layer", None))
        pending.append(getattr(getattr(node, "_handle_event", None), "__self__", None))
        streams = getattr(node, "streams", None)
        if isinstance(streams, dict):
            pending.extend(streams.values())
