"""The hand-over from relay to recorder: raw frames in, the same frames out, over a Unix socket.

The relay's event loop pays for one `struct.pack` and one list append per WebSocket message; the
buffer goes out in one `send` per loop iteration. Parsing, redaction, metrics and SQL all happen
in the recorder process (`recorder/main.py`), which reads the items back with `Decoder`.

Every item is a fixed header and a body: `MESSAGE` bodies are one message's bytes exactly as
mitmproxy's WebSocket layer parsed them; `RAW` bodies are a chunk of one direction's WebSocket
stream exactly as it went over the wire (frame headers, masks, compression and all), which the
recorder splits into messages itself (`recorder/frames.py`); the other kinds carry a small JSON
object. The recorder writes back only `ACK` items: how far it has committed. The relay's end,
`handover/sender.py`, keeps what is not acknowledged and sends it again to a recorder that
restarted, so recorded + dropped == relayed holds across a recorder crash.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

# kind, flags, session number, seq, timestamp, body length
HEADER = struct.Struct("<BBIQdI")
HELLO, OPEN, MESSAGE, CLOSE, UPGRADE_FAILED, DROPPED, UNRECORDED, CALL, RAW = range(1, 10)
# The only item the recorder sends back: `seq` is a position in the stream it received on this
# connection, and every record derived from the items before it is committed.
ACK = 10
# RESYNC (RAW only): the body starts a message after bytes of this direction were not handed
# over (dropped, or sent to a recorder before this one). A RAW item's `seq` is the relay's seq
# of the first message the chunk ends, as a MESSAGE item's is its message's. REPLAY: sent before
# to a recorder that did not acknowledge it; its records may be stored already.
FROM_CLIENT, IS_TEXT, RESYNC, REPLAY = 1, 2, 4, 8


@dataclass(frozen=True, slots=True)
class Item:
    kind: int
    flags: int
    session: int
    seq: int
    ts: float
    body: bytes

    @property
    def from_client(self) -> bool:
        return bool(self.flags & FROM_CLIENT)

    @property
    def is_text(self) -> bool:
        return bool(self.flags & IS_TEXT)

    def fields(self) -> dict[str, Any]:
        """The JSON body of a control item."""
        value = orjson.loads(self.body) if self.body else {}
        return value if isinstance(value, dict) else {}


def control(kind: int, session: int = 0, **fields: Any) -> bytes:
    """A control item (everything but `MESSAGE`), encoded."""
    body = orjson.dumps(fields)
    return HEADER.pack(kind, 0, session, 0, time.time(), len(body)) + body


class Decoder:
    """Splits the byte stream from one relay back into items; feed it whatever arrives."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[Item]:
        buffer = self._buffer
        buffer += data
        offset, size, header = 0, len(buffer), HEADER.size
        view = memoryview(buffer)
        try:
            while size - offset >= header:
                kind, flags, session, seq, ts, length = HEADER.unpack_from(buffer, offset)
                end = offset + header + length
                if end > size:
                    break
                yield Item(kind, flags, session, seq, ts, bytes(view[offset + header : end]))
                offset = end
        finally:
            view.release()
            del buffer[:offset]

    @property
    def pending_bytes(self) -> int:
        """Bytes of an item that has not arrived whole (lost if the relay goes away now)."""
        return len(self._buffer)
