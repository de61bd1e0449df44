"""The relay's socket to the recorder: never blocks, one `sendmsg` per loop iteration, and a new
connection every `RECONNECT_EVERY_S` while the recorder is away. What goes over it, and what
is kept to go again, is the `Sender`'s (`handover/sender.py`)."""

from __future__ import annotations

import asyncio
import collections
import errno
import logging
import os
import socket
from collections.abc import Callable
from itertools import islice

logger = logging.getLogger(__name__)

RECONNECT_EVERY_S = 0.5
# Buffers per `sendmsg`: the kernel's limit on an I/O vector (IOV_MAX).
SEND_BUFFERS = min(os.sysconf("SC_IOV_MAX"), 1024) if hasattr(os, "sysconf") else 16


class Channel:
    """A Unix socket to the recorder and the parts waiting to go over it, sent from the bytes
    given, never copied: a joined copy and its leftovers' slices made the relay's memory peak at
    3-4x what it kept. `on_connected` runs on every new connection (its parts go first),
    `before_flush` before each write, `on_readable` when the recorder wrote back, `on_lost` when
    the connection went away."""

    def __init__(
        self,
        path: str,
        on_connected: Callable[[], None],
        before_flush: Callable[[], None],
        on_readable: Callable[[], None],
        on_lost: Callable[[OSError], None],
    ) -> None:
        self.path = path
        self._on_connected = on_connected
        self._before_flush = before_flush
        self._on_readable = on_readable
        self._on_lost = on_lost
        self.sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Not yet sent, in order; the first may be the unsent end of a part (a memoryview).
        self.parts: collections.deque[bytes | memoryview] = collections.deque()
        self.position = 0  # bytes appended to the current connection's stream
        self.flush_scheduled = False
        self._writer_waiting = False
        self._reconnect_scheduled = False
        #: How many times it connected.
        self.connections = 0

    def connect(self) -> bool:
        """Connect (again); True when connected. Safe to call at any time."""
        if self.sock is not None:
            return True
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            logger.debug("recorder not reachable at %s: %s", self.path, exc)
            return False
        sock.setblocking(False)
        self.sock = sock
        self.connections += 1
        self.parts, self.position = collections.deque(), 0
        loop = self._running_loop()
        if loop is not None:
            # The recorder writes acknowledgements; an end of file means it went away. Watched
            # now, not at the next message, so a quiet relay reconnects to a restarted one too.
            loop.add_reader(sock.fileno(), self._on_readable)
        self._on_connected()
        logger.info("recorder connected at %s", self.path)
        self.schedule_flush()
        return True

    def append(self, part: bytes) -> None:
        self.parts.append(part)
        self.position += len(part)

    def flush(self) -> None:
        """Write what the socket takes now; the rest waits for it to become writable."""
        self.flush_scheduled = False
        if self.sock is None:
            return
        self._before_flush()
        sock, parts = self.sock, self.parts
        while parts:
            try:
                sent = sock.sendmsg(list(islice(parts, SEND_BUFFERS)))
            except (BlockingIOError, InterruptedError):
                self._wait_writable()
                return
            except OSError as exc:
                self.lost(exc)
                return
            # Parts sent whole leave (an empty one too: it has nothing to send, and left in
            # front it would have every later `sendmsg` send nothing); the rest of a part sent
            # in part goes first next time.
            while parts and sent >= len(parts[0]):
                sent -= len(parts[0])
                parts.popleft()
            if sent:
                parts[0] = memoryview(parts[0])[sent:]

    def recv(self) -> bytes:
        """What the recorder wrote back, b"" when nothing is there; the end of the connection
        is noticed here (then `on_lost` has run)."""
        if self.sock is None:
            return b""
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError as exc:
            self.lost(exc)
            return b""
        if not data:
            self.lost(ConnectionResetError(errno.ECONNRESET, "recorder closed"))
        return data

    def lost(self, exc: OSError) -> None:
        if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
            logger.warning("hand-over to the recorder failed: %s", exc)
        self.close()
        self._on_lost(exc)
        self.schedule_reconnect()

    def close(self) -> None:
        sock, self.sock = self.sock, None
        self.parts = collections.deque()
        if sock is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(sock.fileno())
            if self._writer_waiting:
                self._loop.remove_writer(sock.fileno())
        self._writer_waiting = False
        sock.close()

    def schedule_flush(self) -> None:
        loop = self._running_loop()
        if loop is None or loop.is_closed():
            self.flush()  # no event loop (tests, shutdown): write right away
            return
        self.flush_scheduled = True
        loop.call_soon(self.flush)

    def schedule_reconnect(self) -> None:
        loop = self._running_loop()
        if loop is None or self._reconnect_scheduled:
            return
        self._reconnect_scheduled = True
        loop.call_later(RECONNECT_EVERY_S, self._reconnect)

    def _reconnect(self) -> None:
        self._reconnect_scheduled = False
        if not self.connect():
            self.schedule_reconnect()

    def _running_loop(self) -> asyncio.AbstractEventLoop | None:
        if self._loop is None:
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                return None
        return self._loop

    def _wait_writable(self) -> None:
        loop = self._running_loop()
        if loop is None or self.sock is None or self._writer_waiting:
            return
        self._writer_waiting = True
        loop.add_writer(self.sock.fileno(), self._writable)

    def _writable(self) -> None:
        if self._loop is not None and self.sock is not None:
            self._loop.remove_writer(self.sock.fileno())
        self._writer_waiting = False
        self.flush()
