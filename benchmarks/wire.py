"""A minimal, fast WebSocket endpoint (RFC 6455) for the load client and the fake upstream.

Frames are pre-built byte strings: the server never masks and the client masks with the all-zero
key (allowed by the RFC), so sending costs one `transport.write` and no per-byte work. Receivers
look only at the first bytes of each message, where the traffic puts its timestamp.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
import time

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
ZERO_MASK = b"\0\0\0\0"
PEEK_BYTES = 96  # how much of each message a receiver reads: the event id with its timestamp
WRITE_HIGH_WATER = 512 * 1024


def frame_header(length: int, *, masked: bool, opcode: int = OP_TEXT, fin: bool = True) -> bytes:
    """The header of one frame; a masked header ends with the all-zero masking key."""
    first = (0x80 if fin else 0) | opcode
    mask_bit = 0x80 if masked else 0
    if length < 126:
        header = bytes((first, mask_bit | length))
    elif length < 65536:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    return header + ZERO_MASK if masked else header


def unmask(data: bytes, key: bytes) -> bytes:
    """`data` (starting at payload offset 0) XORed with the repeating 4-byte `key`."""
    if key == ZERO_MASK or not data:
        return data
    size = len(data)
    stream = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")).to_bytes(
        size, "little"
    )


def accept_key(client_key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(client_key + WS_GUID).digest())  # noqa: S324 (RFC 6455)


def upgrade_request(host: str, port: int, path: str, api_key: str) -> tuple[bytes, bytes]:
    """The HTTP upgrade request of a client and the accept value it expects back."""
    key = base64.b64encode(os.urandom(16))
    request = (
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {api_key}\r\n"
        ).encode()
        + b"Sec-WebSocket-Key: "
        + key
        + b"\r\n\r\n"
    )
    return request, accept_key(key)


def upgrade_response(request_head: bytes) -> bytes:
    """The 101 answer to a client's upgrade request (headers only, no extensions)."""
    key = b""
    for line in request_head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            key = value.strip()
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(key) + b"\r\n\r\n"
    )


class WebSocketEndpoint(asyncio.Protocol):
    """One side of a WebSocket: handshake, frame parsing, control frames and write flow control.

    Subclasses implement `on_open` and `on_message(head, size, now_ns)`; `head` is the message's
    first `PEEK_BYTES` bytes, unmasked.
    """

    is_client = False

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._open = False
        self._writable = asyncio.Event()
        self._writable.set()
        self._fragment_head: bytes | None = None
        self._fragment_size = 0
        self.closed = asyncio.get_running_loop().create_future()
        self._expected_accept = b""
        self._request = b""
        self.peek = PEEK_BYTES  # how much of each message `on_message` gets

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        if self._request:
            transport.write(self._request)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    async def writable(self) -> None:
        """Wait while the transport's buffer is above its high-water mark."""
        if not self._writable.is_set():
            await self._writable.wait()

    def connection_lost(self, exc: Exception | None) -> None:
        self._writable.set()
        if not self.closed.done():
            self.closed.set_result(None)
        self.on_closed()

    def data_received(self, data: bytes) -> None:
        if self._open:
            self._buffer += data
            self._parse(time.monotonic_ns())
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self._buffer[:end])
        del self._buffer[: end + 4]
        if not self._handshake(head):
            return
        self._open = True
        self.on_open()
        if self._buffer:
            self._parse(time.monotonic_ns())

    def _handshake(self, head: bytes) -> bool:
        assert self.transport is not None
        if not self.is_client:
            self.transport.write(upgrade_response(head))
            return True
        if b" 101 " not in head.split(b"\r\n", 1)[0] or self._expected_accept not in head:
            self.handshake_failed(head.split(b"\r\n", 1)[0].decode(errors="replace"))
            self.transport.close()
            return False
        return True

    def _parse(self, now_ns: int) -> None:
        buf = self._buffer
        size = len(buf)
        pos = 0
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length = b1 & 0x7F
            start = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(buf[start : start + 2], "big")
                start += 2
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buf[start : start + 8], "big")
                start += 8
            key = ZERO_MASK
            if b1 & 0x80:
                key = bytes(buf[start : start + 4])
                start += 4
            end = start + length
            if end > size:
                break
            self._frame(b0, buf, start, end, key, now_ns)
            pos = end
        if pos:
            del buf[:pos]

    def _frame(
        self, b0: int, buf: bytearray, start: int, end: int, key: bytes, now_ns: int
    ) -> None:
        opcode, fin = b0 & 0x0F, b0 & 0x80
        if opcode >= OP_CLOSE:
            self._control(opcode, unmask(bytes(buf[start:end]), key))
            return
        if opcode != OP_CONTINUATION:
            self._fragment_head, self._fragment_size = b"", 0
        head = self._fragment_head
        if head is not None and len(head) < self.peek:
            take = min(end, start + self.peek - len(head))
            self._fragment_head = head + unmask(bytes(buf[start:take]), key)
        self._fragment_size += end - start
        if fin and self._fragment_head is not None:
            head, self._fragment_head = self._fragment_head, None
            self.on_message(head, self._fragment_size, now_ns)

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == OP_PING:
            self.send(payload, opcode=OP_PONG)
        elif opcode == OP_CLOSE and self.transport and not self.transport.is_closing():
            self.send(payload[:2], opcode=OP_CLOSE)
            self.transport.close()

    def send(self, payload: bytes, *, opcode: int = OP_TEXT) -> None:
        assert self.transport is not None
        self.transport.write(frame_header(len(payload), masked=self.is_client, opcode=opcode))
        self.transport.write(payload)

    def close(self, code: int = 1000) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.send(code.to_bytes(2, "big"), opcode=OP_CLOSE)

    def on_open(self) -> None:
        """The handshake is done."""

    def on_message(self, head: bytes, size: int, now_ns: int) -> None:
        """A whole data message arrived (at `now_ns`, monotonic)."""

    def on_closed(self) -> None:
        """The TCP connection is gone."""

    def handshake_failed(self, status_line: str) -> None:
        """A client's upgrade was refused."""
