"""The hand-over from relay to recorder: raw frames in, the same frames out, over a Unix socket.

The relay's event loop pays for one `struct.pack` and one list append per WebSocket message; the
buffer goes out in one `send` per loop iteration. Parsing, redaction, metrics and SQL all happen
in the recorder process (`recorder/main.py`), which reads the items back with `Decoder`.

Every item is a fixed header and a body: `MESSAGE` bodies are one message's bytes exactly as
mitmproxy's WebSocket layer parsed them; `RAW` bodies are a chunk of one direction's WebSocket
stream exactly as it went over the wire (frame headers, masks, compression and all), which the
recorder splits into messages itself (`recorder/frames.py`); the other kinds carry a small JSON
object. Messages that cannot be handed over (the
buffer is full, the recorder is down) are dropped here and reported later as `DROPPED` counts;
session opens and closes are never dropped, and a recorder that comes back is told again about
every session still open, so recorded + dropped == relayed holds across a recorder restart.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

logger = logging.getLogger(__name__)

# kind, flags, session number, seq, timestamp, body length
HEADER = struct.Struct("<BBIQdI")
HELLO, OPEN, MESSAGE, CLOSE, UPGRADE_FAILED, DROPPED, UNRECORDED, CALL, RAW = range(1, 10)
# RESYNC (RAW only): the body starts a message after bytes of this direction were not handed
# over (dropped, or sent to a recorder before this one). A RAW item's `seq` is the relay's seq
# of the first message the chunk ends, as a MESSAGE item's is its message's.
FROM_CLIENT, IS_TEXT, RESYNC = 1, 2, 4

# What the relay holds for a recorder that cannot keep up before it drops messages: a few
# seconds of a hundred voice sessions. The kernel's socket buffer comes on top.
BUFFER_LIMIT_BYTES = 4 * 1024 * 1024
RECONNECT_EVERY_S = 0.5
DROP_LOG_EVERY_S = 10.0


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


@dataclass
class _Drops:
    client: int = 0
    server: int = 0
    client_bytes: int = 0
    server_bytes: int = 0


class Sender:
    """The relay's end: never blocks, never touches a frame; one `send` per loop iteration."""

    def __init__(self, path: str, limit_bytes: int = BUFFER_LIMIT_BYTES) -> None:
        self.path = path
        self._limit_bytes = limit_bytes
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._parts: list[bytes] = []
        self._buffered = 0
        self._unsent = b""
        self._flush_scheduled = False
        self._writer_waiting = False
        self._reconnect_scheduled = False
        # Control items not yet known to be written whole: kept to re-send if the link breaks.
        self._control_in_flight: list[bytes] = []
        # Sessions still open, by number: their OPEN item, told again to a new recorder.
        self._open: dict[int, bytes] = {}
        self._drops: dict[tuple[int, str], _Drops] = {}
        #: How many times it connected: a raw stream restarts at a message for a new recorder.
        self.connections = 0
        self.dropped = 0
        self._dropped_since_log = 0
        self._last_drop_log = 0.0

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self) -> bool:
        """Connect (again) to the recorder; True when connected. Safe to call at any time."""
        if self._sock is not None:
            return True
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            logger.debug("recorder not reachable at %s: %s", self.path, exc)
            return False
        sock.setblocking(False)
        self._sock = sock
        self.connections += 1
        self._unsent = b""
        loop = self._running_loop()
        if loop is not None:
            # The recorder never writes back: readable means it went away. Notice it now, not
            # at the next message, so a quiet relay reconnects to a restarted recorder too.
            loop.add_reader(sock.fileno(), self._peer_closed)
        # A new recorder knows nothing: every open session first, then what was held back.
        held, self._parts, self._buffered = self._parts, [], 0
        self._control_in_flight = []
        self._append(control(HELLO))
        for opened in self._open.values():
            self._append(opened)
        for part in held:
            self._append(part)
        self._report_drops()
        logger.info("recorder connected at %s", self.path)
        self._schedule_flush()
        return True

    def open(self, session: int, **fields: Any) -> None:
        item = control(OPEN, session, **fields)
        self._open[session] = item
        self._append(item)
        self._schedule_flush()

    def close(self, session: int, **fields: Any) -> None:
        self._open.pop(session, None)
        self._append(control(CLOSE, session, **fields))
        self._schedule_flush()

    def notice(self, kind: int, **fields: Any) -> None:
        """A control item that is not about one session (refused or unrecorded upgrades, call
        requests)."""
        self._append(control(kind, **fields))
        self._schedule_flush()

    def message(
        self, session: int, seq: int, from_client: bool, is_text: bool, ts: float, content: bytes
    ) -> None:
        """Hand one relayed message over, or count it as dropped: never raises, never waits."""
        if self._sock is None or self._buffered > self._limit_bytes:
            self._drop(session, from_client, len(content))
            return
        flags = (FROM_CLIENT if from_client else 0) | (IS_TEXT if is_text else 0)
        self._parts.append(HEADER.pack(MESSAGE, flags, session, seq, ts, len(content)))
        self._parts.append(content)
        self._buffered += HEADER.size + len(content)
        if not self._flush_scheduled:
            self._schedule_flush()

    def raw(
        self,
        session: int,
        from_client: bool,
        ts: float,
        chunk: bytes,
        seq: int,
        resync: bool = False,
    ) -> bool:
        """Hand one relayed chunk of a WebSocket stream over; False when it was not (dropped: the
        caller counts its messages with `dropped_raw`). `resync`: the chunk starts a message
        after a gap."""
        if self._sock is None or self._buffered > self._limit_bytes:
            return False
        flags = (FROM_CLIENT if from_client else 0) | (RESYNC if resync else 0)
        self._parts.append(HEADER.pack(RAW, flags, session, seq, ts, len(chunk)))
        self._parts.append(chunk)
        self._buffered += HEADER.size + len(chunk)
        if not self._flush_scheduled:
            self._schedule_flush()
        return True

    def dropped_raw(self, session: int, from_client: bool, messages: int, size: int) -> None:
        """Count the messages of a raw chunk that could not be handed over."""
        if not messages and not size:
            return
        self._drop(session, from_client, size, messages)

    def flush(self) -> None:
        """Write what the socket takes now; the rest waits for it to become writable."""
        self._flush_scheduled = False
        sock = self._sock
        if sock is None:
            return
        if self._drops and self._buffered <= self._limit_bytes:
            self._report_drops()
        if self._parts and not self._unsent:
            self._unsent = b"".join(self._parts)
            self._parts.clear()
        while self._unsent:
            try:
                sent = sock.send(self._unsent)
            except (BlockingIOError, InterruptedError):
                self._wait_writable()
                return
            except OSError as exc:
                self._disconnected(exc)
                return
            self._unsent = self._unsent[sent:]
            self._buffered -= sent
            if not self._unsent and self._parts:
                self._unsent = b"".join(self._parts)
                self._parts.clear()
        self._buffered = 0
        self._control_in_flight.clear()

    def drain(self, timeout_s: float) -> bool:
        """Block until everything queued is written (at shutdown); False if it could not be."""
        deadline = time.monotonic() + timeout_s
        self._report_drops()
        while self._sock is not None and (self._parts or self._unsent):
            self.flush()
            if time.monotonic() > deadline:
                return False
            if self._unsent:
                time.sleep(0.005)
        return self._sock is not None

    def shutdown(self) -> None:
        self._forget_socket()

    def _forget_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(sock.fileno())
            if self._writer_waiting:
                self._loop.remove_writer(sock.fileno())
        self._writer_waiting = False
        sock.close()

    def _peer_closed(self) -> None:
        if self._sock is None:
            return
        try:
            data = self._sock.recv(1)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._disconnected(exc)
            return
        if not data:
            self._disconnected(ConnectionResetError(errno.ECONNRESET, "recorder closed"))

    # ------------------------------------------------------------------------------- internals

    def _append(self, item: bytes) -> None:
        # Control items are never dropped: a session's open and close must reach storage.
        self._parts.append(item)
        self._buffered += len(item)
        self._control_in_flight.append(item)

    def _running_loop(self) -> asyncio.AbstractEventLoop | None:
        if self._loop is None:
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                return None
        return self._loop

    def _schedule_flush(self) -> None:
        loop = self._running_loop()
        if loop is None or loop.is_closed():
            self.flush()  # no event loop (tests, shutdown): write right away
            return
        self._flush_scheduled = True
        loop.call_soon(self.flush)

    def _wait_writable(self) -> None:
        loop = self._running_loop()
        if loop is None or self._sock is None or self._writer_waiting:
            return
        self._writer_waiting = True
        loop.add_writer(self._sock.fileno(), self._writable)

    def _writable(self) -> None:
        if self._loop is not None and self._sock is not None:
            self._loop.remove_writer(self._sock.fileno())
        self._writer_waiting = False
        self.flush()

    def _disconnected(self, exc: OSError) -> None:
        if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
            logger.warning("hand-over to the recorder failed: %s", exc)
        logger.error("recorder connection lost; messages are dropped and counted until it is back")
        self._forget_socket()
        # Messages on their way are lost with the old recorder; control items are sent again.
        self._unsent = b""
        self._parts = self._control_in_flight
        self._control_in_flight = []
        self._buffered = sum(map(len, self._parts))
        self._schedule_reconnect()

    def _schedule_reconnect(self) -> None:
        loop = self._running_loop()
        if loop is None or self._reconnect_scheduled:
            return
        self._reconnect_scheduled = True
        loop.call_later(RECONNECT_EVERY_S, self._reconnect)

    def _reconnect(self) -> None:
        self._reconnect_scheduled = False
        if not self.connect():
            self._schedule_reconnect()

    def _drop(self, session: int, from_client: bool, size: int, messages: int = 1) -> None:
        reason = "recorder_down" if self._sock is None else "handover_full"
        drops = self._drops.get((session, reason))
        if drops is None:
            drops = self._drops[(session, reason)] = _Drops()
        if from_client:
            drops.client += messages
            drops.client_bytes += size
        else:
            drops.server += messages
            drops.server_bytes += size
        self.dropped += messages
        self._dropped_since_log += messages
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_EVERY_S:
            logger.warning(
                "recorder %s: dropped %d message(s) (relayed unchanged, not recorded)",
                "down" if reason == "recorder_down" else "behind",
                self._dropped_since_log,
            )
            self._last_drop_log, self._dropped_since_log = now, 0
        if self._sock is None:
            self._schedule_reconnect()

    def _report_drops(self) -> None:
        if self._sock is None:
            return
        for (session, reason), drops in self._drops.items():
            self._append(
                control(
                    DROPPED,
                    session,
                    reason=reason,
                    client=drops.client,
                    server=drops.server,
                    client_bytes=drops.client_bytes,
                    server_bytes=drops.server_bytes,
                )
            )
        self._drops.clear()
