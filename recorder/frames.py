"""WebSocket messages back from the raw relay's byte chunks: one parser per session and direction.

The raw relay (`proxy/raw_relay.py`) hands over each direction's stream exactly as it went over
the wire. Here the frames are read as websockets' sans-I/O `Protocol` reads them, with its codec:
its C speed-up unmasks, its permessage-deflate extension inflates (when the two ends negotiated it:
the 101's `Sec-WebSocket-Extensions`, passed on in the session's OPEN item), its `Frame.check` and
`Close.parse` judge control frames and close codes. Only the header is read here, from the chunk
itself: the `Protocol`'s generator steps and buffer copies cost a third of the recorder's time on
a voice message. What comes out is what mitmproxy's WebSocket layer would have handed over as
`MESSAGE` items; `tests/test_frames_codec.py` holds the two readings side by side.
"""

from __future__ import annotations

import logging

from websockets.exceptions import ProtocolError
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Close, Frame, Opcode
from websockets.headers import parse_extension
from websockets.speedups import apply_mask

from protocol.ws_frame import frame_header

logger = logging.getLogger(__name__)

DEFLATE = "permessage-deflate"
DEFAULT_WINDOW_BITS = 15

_OPCODES = {int(opcode): opcode for opcode in Opcode}
_TEXT, _BINARY, _CONT = int(Opcode.TEXT), int(Opcode.BINARY), int(Opcode.CONT)
_CLOSE = int(Opcode.CLOSE)
_RESERVED_BITS = 0b01110000
_WHOLE_TEXT, _WHOLE_BINARY = 0x80 | _TEXT, 0x80 | _BINARY  # FIN, no reserved bits


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


def deflate_decoder(params: dict[str, str | None], from_client: bool) -> PerMessageDeflate:
    """websockets' decoder of what the client (`from_client`) or the server sends."""
    remote, local = ("client", "server") if from_client else ("server", "client")

    def bits(side: str) -> int:
        value = params.get(f"{side}_max_window_bits")
        return int(value) if value else DEFAULT_WINDOW_BITS

    return PerMessageDeflate(
        f"{remote}_no_context_takeover" in params,
        f"{local}_no_context_takeover" in params,
        bits(remote),
        max(bits(local), 9),  # only for sending, which a parser never does
    )


def _header(data: bytes, at: int, masked: bool) -> tuple[int, int, bytes | None] | int:
    """(where the payload starts, its length, the mask) of the frame at `at`; or how many bytes
    from `at` its header needs when `data` ends before. ProtocolError as websockets raises it."""
    if len(data) - at < 2:
        return 2
    if data[at] & 0x0F not in _OPCODES:
        raise ProtocolError("invalid opcode")
    if bool(data[at + 1] & 0x80) != masked:
        raise ProtocolError("incorrect masking")
    header = frame_header(data, at)
    if isinstance(header, int):
        return header
    start, length, _ = header
    return start, length, data[start - 4 : start] if masked else None


def _one_message(chunk: bytes, masked: bool) -> tuple[bool, bytes] | None:
    """The message of a chunk that is exactly one whole, unfragmented, uncompressed text or
    binary frame (the relay hands most over so); None sends any other to the general reading."""
    if not chunk or (chunk[0] != _WHOLE_TEXT and chunk[0] != _WHOLE_BINARY):
        return None
    try:
        header = _header(chunk, 0, masked)
    except ProtocolError:
        return None  # refused by the general reading, which says why
    if isinstance(header, int) or header[0] + header[1] != len(chunk):
        return None
    start, _, mask = header
    payload = chunk[start:] if mask is None else apply_mask(chunk[start:], mask)
    return chunk[0] == _WHOLE_TEXT, payload


class Direction:
    """One direction's parser: feed chunks, get whole messages (is_text, payload)."""

    def __init__(self, from_client: bool, deflate: dict[str, str | None] | None) -> None:
        self.from_client = from_client  # client frames are masked, server frames are not
        self._deflate = deflate
        self.failed = False  # until the relay resyncs this direction
        self._start()

    def _start(self) -> None:
        self._extension: PerMessageDeflate | None = None
        if self._deflate is not None:
            self._extension = deflate_decoder(self._deflate, self.from_client)
        self._pending: list[bytes] = []  # the start of a frame not yet whole
        self._pending_bytes = 0
        self._needed = 0  # bytes from the frame's start before it can be read further
        self._parts: list[bytes] = []
        self._is_text = False
        self._fragmented = False  # between a message's first frame and its last
        self._closed = False  # a close frame came: the rest is discarded, as websockets does

    def resync(self) -> None:
        """The next chunk starts a message after a gap: start over. (With deflate's context
        takeover the messages after a gap cannot be inflated: they fail as unparsable.)"""
        self._start()
        self.failed = False

    def feed(self, chunk: bytes) -> list[tuple[bool, bytes]]:
        """The messages that `chunk` completes; FrameError when the stream cannot be read."""
        if self.failed:  # no frame boundary to go by until the relay resyncs
            raise FrameError("unreadable since an earlier error")
        if self._closed:
            return []
        if not self._pending and self._extension is None and not self._fragmented:
            whole = _one_message(chunk, self.from_client)
            if whole is not None:
                return [whole]
        if self._pending:  # joined once the frame under way can go further: no quadratic copy
            self._pending.append(chunk)
            self._pending_bytes += len(chunk)
            if self._pending_bytes < self._needed:
                return []
            chunk = b"".join(self._pending)
        messages: list[tuple[bool, bytes]] = []
        try:
            end = self._read(chunk, messages)
        except Exception as exc:  # websockets' parser fails the connection on any of them
            self.failed = True
            raise FrameError(str(exc)) from exc
        rest = chunk[end:] if end < len(chunk) and not self._closed else b""
        self._pending = [rest] if rest else []
        self._pending_bytes = len(rest)
        return messages

    def _read(self, data: bytes, messages: list[tuple[bool, bytes]]) -> int:
        """Read the whole frames of `data` into `messages`; where the first one not whole starts."""
        at, masked = 0, self.from_client
        while at < len(data):
            header = _header(data, at, masked)
            if isinstance(header, int):
                self._needed = header
                return at
            start, length, mask = header
            end = start + length
            if end > len(data):
                self._needed = end - at
                return at
            payload = data[start:end] if mask is None else apply_mask(data[start:end], mask)
            message = self._frame(data[at], payload)
            if message is not None:
                messages.append(message)
            if self._closed:
                return len(data)
            at = end
        return at

    def _frame(self, head: int, payload: bytes) -> tuple[bool, bytes] | None:
        """One frame, as websockets' `Protocol.recv_frame` takes it: the message it ends, if any."""
        opcode, fin = head & 0x0F, bool(head & 0x80)
        if self._extension is not None or head & _RESERVED_BITS or opcode >= _CLOSE:
            payload = self._checked(head, payload)
        if opcode in (_TEXT, _BINARY):
            if self._fragmented:
                raise ProtocolError("expected a continuation frame")
            self._is_text, self._parts = opcode == _TEXT, [payload]
        elif opcode == _CONT:
            if not self._fragmented:
                raise ProtocolError("unexpected continuation frame")
            self._parts.append(payload)
        else:
            if opcode == _CLOSE:
                Close.parse(payload)  # a bad close code or reason fails the stream
                if self._fragmented:
                    raise ProtocolError("incomplete fragmented message")
                self._closed = True
            return None  # ping, pong, close: the relay forwarded them; not messages
        self._fragmented = not fin
        if not fin:
            return None
        parts, self._parts = self._parts, []
        return self._is_text, parts[0] if len(parts) == 1 else b"".join(parts)

    def _checked(self, head: int, payload: bytes) -> bytes:
        """The payload of a control, reserved-bit or deflate-encoded frame, through websockets'
        own `Frame`: its extension inflates, its `check` refuses what the protocol forbids."""
        frame = Frame(
            _OPCODES[head & 0x0F],
            payload,
            bool(head & 0x80),
            bool(head & 0x40),
            bool(head & 0x20),
            bool(head & 0x10),
        )
        if self._extension is not None:
            frame = self._extension.decode(frame)
        frame.check()
        return bytes(frame.data)


class RawStream:
    """Both directions of one raw-relayed session."""

    def __init__(self, extensions_header: str | None) -> None:
        deflate = deflate_params(extensions_header)
        self.server = Direction(False, deflate)
        self.client = Direction(True, deflate)

    def direction(self, from_client: bool) -> Direction:
        return self.client if from_client else self.server
