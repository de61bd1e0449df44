"""WebSocket messages back from the raw relay's byte chunks: one parser per session and direction.

The raw relay (`proxy/raw_relay.py`) hands over each direction's stream exactly as it went over
the wire. Here websockets' sans-I/O `Protocol` (its C speed-up unmasks) reads the frames:
masking, fragmented messages, control frames, and permessage-deflate when the two ends
negotiated it (the 101's `Sec-WebSocket-Extensions`, passed on in the session's OPEN item).
What comes out is what mitmproxy's WebSocket layer would have handed over as `MESSAGE` items.
"""

from __future__ import annotations

import logging

from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode
from websockets.headers import parse_extension
from websockets.protocol import Protocol, Side

logger = logging.getLogger(__name__)
# websockets' own logger for these parsers: its "connection closed" lines say nothing here.
_quiet = logging.getLogger(f"{__name__}.codec")
_quiet.setLevel(logging.WARNING)

DEFLATE = "permessage-deflate"
DEFAULT_WINDOW_BITS = 15


class FrameError(Exception):
    """The stream of one direction could not be parsed; the rest of it until a resync is lost."""


def deflate_params(extensions_header: str | None) -> dict[str, str | None] | None:
    """The negotiated permessage-deflate parameters, or None when it was not negotiated."""
    if not extensions_header:
        return None
    for name, params in parse_extension(extensions_header):
        if name == DEFLATE:
            return dict(params)
    return None


def _deflate(params: dict[str, str | None], remote: str, local: str) -> PerMessageDeflate:
    """The decoder of what `remote` ("client"/"server") sends, as `local` reads it."""

    def bits(side: str) -> int:
        value = params.get(f"{side}_max_window_bits")
        return int(value) if value else DEFAULT_WINDOW_BITS

    return PerMessageDeflate(
        f"{remote}_no_context_takeover" in params,
        f"{local}_no_context_takeover" in params,
        bits(remote),
        max(bits(local), 9),  # only for sending, which a parser never does
    )


class Direction:
    """One direction's parser: feed chunks, get whole messages (is_text, payload)."""

    def __init__(self, from_client: bool, deflate: dict[str, str | None] | None) -> None:
        self.from_client = from_client
        self._deflate = deflate
        self._parts: list[bytes] = []
        self._is_text = False
        self.failed = False  # until the relay resyncs this direction
        self._protocol = self._new_protocol()

    def _new_protocol(self) -> Protocol:
        # Client frames are masked and read as a server reads them; server frames as a client.
        protocol = Protocol(
            Side.SERVER if self.from_client else Side.CLIENT, max_size=None, logger=_quiet
        )
        if self._deflate is not None:
            remote, local = ("client", "server") if self.from_client else ("server", "client")
            extensions: list[Extension] = [_deflate(self._deflate, remote, local)]
            protocol.extensions = extensions
        return protocol

    def resync(self) -> None:
        """The next chunk starts a message after a gap: start over. (With deflate's context
        takeover the messages after a gap cannot be inflated: they fail as unparsable.)"""
        self._protocol = self._new_protocol()
        self._parts, self.failed = [], False

    def feed(self, chunk: bytes) -> list[tuple[bool, bytes]]:
        """The messages that `chunk` completes; FrameError when the stream cannot be read."""
        if self.failed:  # no frame boundary to go by until the relay resyncs
            raise FrameError("unreadable since an earlier error")
        protocol = self._protocol
        protocol.receive_data(chunk)
        protocol.data_to_send()  # pongs and close replies a real endpoint would send: not ours
        messages = []
        for frame in protocol.events_received():
            if not isinstance(frame, Frame):
                continue
            opcode = frame.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                self._is_text = opcode is Opcode.TEXT
                self._parts = [bytes(frame.data)]
            elif opcode is Opcode.CONT:
                self._parts.append(bytes(frame.data))
            else:
                continue  # ping, pong, close: the relay forwarded them; not messages
            if frame.fin:
                messages.append((self._is_text, b"".join(self._parts)))
                self._parts = []
        if protocol.parser_exc is not None:
            self.failed = True
            raise FrameError(str(protocol.parser_exc)) from protocol.parser_exc
        return messages


class RawStream:
    """Both directions of one raw-relayed session."""

    def __init__(self, extensions_header: str | None) -> None:
        deflate = deflate_params(extensions_header)
        self.server = Direction(False, deflate)
        self.client = Direction(True, deflate)

    def direction(self, from_client: bool) -> Direction:
        return self.client if from_client else self.server
