"""rtrec's own layer for a recorded WebSocket once the upstream answered 101: bytes, not messages.

mitmproxy's `WebsocketLayer` parses every frame (wsproto), builds a `WebSocketMessage`, runs the
`websocket_message` hook and re-encodes the frame: most of a relay's CPU per message. This layer
forwards what arrives in each direction as it arrives, unchanged (frame boundaries, masking keys,
compressed payloads and all), the way mitmproxy's `TCPLayer` does, and hands each chunk to a
`RawSink` (the `Relay` addon), which passes it to the recorder. Frame headers are read only as
far as `FrameBoundaries` needs: the close frames that end the connection, and a place between
frames for the close frames rtrec sends itself at shutdown. `websocket_start` and `websocket_end`
run as under mitmproxy's layer; `flow.websocket` gets the close code, reason and closer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from mitmproxy import http
from mitmproxy.proxy import commands, events, layer
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.layers.websocket import (
    WebsocketEndHook,
    WebSocketMessageInjected,
    WebsocketStartHook,
)
from mitmproxy.websocket import WebSocketMessage
from wsproto.frame_protocol import FrameProtocol, Opcode

from proxy.frame_boundaries import FrameBoundaries

ABNORMAL_CLOSURE = 1006  # RFC 6455 §7.1.5: the connection closed without a close frame
#: Set in `flow.metadata` of a WebSocket the proxy itself closed (not the client, not the server).
CLOSED_BY_PROXY_KEY = "rtrec_closed_by_proxy"


class RawSink(Protocol):
    """Who gets the relayed chunks: the `Relay` addon."""

    def raw_received(
        self, flow: http.HTTPFlow, from_client: bool, chunk: bytes, frames: FrameBoundaries
    ) -> None: ...


class CloseInjected(WebSocketMessageInjected):
    """Asks a live raw relay to close both sides (`code`, `reason`) between frames; routed to
    the flow's layer as mitmproxy routes an injected message."""

    def __init__(self, flow: http.HTTPFlow, code: int, reason: str) -> None:
        super().__init__(flow, WebSocketMessage(Opcode.TEXT, True, b""))
        self.code = code
        self.reason = reason


class RawRelayLayer(layer.Layer):
    """Relays both directions of one WebSocket byte for byte; see the module docstring."""

    flow: http.HTTPFlow

    def __init__(self, context: Context, flow: http.HTTPFlow, sink: RawSink) -> None:
        super().__init__(context)
        self.flow = flow
        self.sink = sink
        self.client_frames = FrameBoundaries()  # what the client sends
        self.server_frames = FrameBoundaries()  # what the server sends
        # Shutdown: the close frame (already encoded) still to send to the client / the server,
        # each waiting for the other peer's frame under way to end.
        self._close_to_client: bytes | None = None
        self._close_to_server: bytes | None = None
        self._proxy_close: tuple[int, str] | None = None  # rtrec's own close, at shutdown
        self._closer: bool | None = None  # True: the client sent the first close frame
        self._step: Callable[[events.Event], layer.CommandGenerator[None]] = self.start

    @property
    def relaying(self) -> bool:
        """Still relaying: not closed, nor closing at rtrec's request."""
        return self._step == self.relay and self._close_to_client is None

    def _handle_event(self, event: events.Event) -> layer.CommandGenerator[None]:
        return self._step(event)

    def start(self, _: events.Event) -> layer.CommandGenerator[None]:
        yield WebsocketStartHook(self.flow)
        self._step = self.relay

    def relay(self, event: events.Event) -> layer.CommandGenerator[None]:
        if isinstance(event, events.DataReceived):
            from_client = event.connection is self.context.client
            if self._close_to_client is not None:
                yield from self._relay_until_close(from_client, event.data)
                return
            frames = self.client_frames if from_client else self.server_frames
            frames.feed(event.data)
            yield commands.SendData(
                self.context.server if from_client else self.context.client, event.data
            )
            self.sink.raw_received(self.flow, from_client, event.data, frames)
            if self._closer is None and frames.close is not None:
                self._closer = from_client
            if self.client_frames.close is not None and self.server_frames.close is not None:
                yield from self._end(None)  # both sides said goodbye: the handshake is over
        elif isinstance(event, events.ConnectionClosed):
            yield from self._hung_up(event.connection is self.context.client)
        elif isinstance(event, CloseInjected):
            yield from self._start_close(event.code, event.reason)

    def done(self, _: events.Event) -> layer.CommandGenerator[None]:
        yield from ()

    def _hung_up(self, client: bool) -> layer.CommandGenerator[None]:
        """A peer closed its connection: as under mitmproxy's layer, the other peer gets a close
        frame (wsproto sends 1000 for the local-only 1006) if no close frame went before and the
        stream towards it is between frames; then both are closed."""
        if self._closer is None and self._proxy_close is None:
            towards, frames = (
                (self.context.server, self.client_frames)
                if client
                else (self.context.client, self.server_frames)
            )
            if frames.between_frames:
                yield commands.SendData(
                    towards, bytes(FrameProtocol(client, []).close(ABNORMAL_CLOSURE))
                )
        yield from self._end(client)

    def _start_close(self, code: int, reason: str) -> layer.CommandGenerator[None]:
        """rtrec's shutdown: a close frame to each peer once that peer's stream is between
        frames (the client's close masked, as a client's must be), then both closed."""
        if not self.relaying:
            return
        if self._closer is not None:  # a peer's close is under way: one close frame is enough
            yield from self._end(None)
            return
        self.flow.metadata[CLOSED_BY_PROXY_KEY] = True
        self._proxy_close = (code, reason)
        self._close_to_client = bytes(FrameProtocol(False, []).close(code, reason))
        self._close_to_server = bytes(FrameProtocol(True, []).close(code, reason))
        yield from self._send_due_closes()

    def _relay_until_close(self, from_client: bool, chunk: bytes) -> layer.CommandGenerator[None]:
        """While closing: forward the rest of the frame under way; what follows is not sent."""
        frames = self.client_frames if from_client else self.server_frames
        if not frames.between_frames:
            used = frames.feed(chunk, stop_between_frames=True)
            part = chunk[:used]
            yield commands.SendData(
                self.context.server if from_client else self.context.client, part
            )
            self.sink.raw_received(self.flow, from_client, part, frames)
        yield from self._send_due_closes()

    def _send_due_closes(self) -> layer.CommandGenerator[None]:
        client, server = self.context.client, self.context.server
        if self._close_to_server and self.client_frames.between_frames:
            yield commands.SendData(server, self._close_to_server)
            self._close_to_server = b""
        if self._close_to_client and self.server_frames.between_frames:
            yield commands.SendData(client, self._close_to_client)
            self._close_to_client = b""
        if self._close_to_server == b"" and self._close_to_client == b"":
            yield from self._end(None)

    def _end(self, hung_up_client: bool | None) -> layer.CommandGenerator[None]:
        """Record how it closed: rtrec's own close, else the first close frame, else the peer
        that hung up (1006, as wsproto says); close both connections; run `websocket_end`."""
        websocket = self.flow.websocket
        assert websocket is not None
        if self._proxy_close is not None:
            websocket.close_code, websocket.close_reason = self._proxy_close
        elif self._closer is not None:
            frames = self.client_frames if self._closer else self.server_frames
            assert frames.close is not None
            websocket.closed_by_client = self._closer
            websocket.close_code, websocket.close_reason = frames.close
        else:
            websocket.closed_by_client = hung_up_client
            websocket.close_code, websocket.close_reason = ABNORMAL_CLOSURE, ""
        websocket.timestamp_end = time.time()
        self._step = self.done
        for connection in (self.context.server, self.context.client):
            yield commands.CloseConnection(connection)
        yield WebsocketEndHook(self.flow)
        self.flow.live = False
