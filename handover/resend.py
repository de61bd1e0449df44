"""What the relay handed over that the recorder has not acknowledged yet: kept, bounded in bytes,
and sent again, in the order it was first sent, to a recorder that restarted.

The recorder acknowledges a position in the byte stream of its connection (`ACK`): every record
derived from the items before it is committed. A stream item (`RAW`, `MESSAGE`) is let go only
with the items before it that end on a message boundary, so that what is kept of each
(session, direction) always starts a message and a new recorder can parse it again (`RESYNC`).
A session's `CLOSE`, once acknowledged, lets the whole session go.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from operator import attrgetter

# Unacknowledged bytes the relay keeps in memory, whatever the recorder's state (behind,
# restarting, gone): a bound on the relay's memory and, in the recorder, on what it holds of this
# relay's. Past it, what is handed over waits on disk (`handover/spill.py`, `--spill-mb`), then
# is dropped and counted (`handover_full`, `recorder_down`). 8 MiB is two of the writer's
# batches: the recorder never waits for room while a batch commits. At 16 MiB a 1 GB burst
# grew the relay and recorder 61 MB; at 8 MiB 37 MB (2026-12-07, benchmarks.memory).
RESEND_LIMIT_BYTES = 8 * 1024 * 1024
DEFLATE = "permessage-deflate"


class Kept:
    """One item kept until acknowledged; `end` is its position in the current connection's
    stream (None until it is sent), `order` when it was first handed over."""

    __slots__ = (
        "body",
        "complete",
        "end",
        "flags",
        "kind",
        "messages",
        "order",
        "seq",
        "session",
        "ts",
    )

    def __init__(
        self,
        kind: int,
        flags: int,
        session: int,
        seq: int,
        ts: float,
        body: bytes,
        messages: int = 0,
        complete: bool = True,
    ) -> None:
        self.kind = kind
        self.flags = flags
        self.session = session
        self.seq = seq
        self.ts = ts
        self.body = body
        self.messages = messages  # messages it ends
        self.complete = complete  # the stream is between messages after it
        self.end: int | None = None
        self.order = 0


class _Stream:
    """One (session, direction): its kept items; whether a recorder already saw some of it."""

    __slots__ = ("items", "released")

    def __init__(self) -> None:
        self.items: deque[Kept] = deque()
        self.released = False


class Unacked:
    """Every kept item of one relay: per (session, direction), plus control items."""

    def __init__(self) -> None:
        self._streams: dict[tuple[int, bool], _Stream] = {}
        # Those with items kept: what an acknowledgement walks (not every live session's).
        self._holding: dict[tuple[int, bool], _Stream] = {}
        self._controls: deque[Kept] = deque()
        self._order = 0
        self.size_bytes = 0

    def keep_stream(self, item: Kept, key: tuple[int, bool]) -> None:
        """Keep a stream item of `key`: (session, from_client)."""
        stream = self._holding.get(key)
        if stream is None:
            stream = self._streams.get(key)
            if stream is None:
                stream = self._streams[key] = _Stream()
            self._holding[key] = stream
        self._order += 1
        item.order = self._order
        self.size_bytes += len(item.body)
        stream.items.append(item)

    def keep_control(self, item: Kept) -> None:
        self._keep(item)
        self._controls.append(item)

    def _keep(self, item: Kept) -> None:
        self._order += 1
        item.order = self._order
        self.size_bytes += len(item.body)

    def seen_before(self, session: int, from_client: bool) -> bool:
        """A recorder acknowledged part of this stream: what is kept does not start it."""
        stream = self._streams.get((session, from_client))
        return stream is not None and stream.released

    def acknowledged(self, position: int) -> list[Kept]:
        """Let go of what the recorder committed up to `position`; the control items let go."""
        for key, stream in list(self._holding.items()):
            self._release_stream(stream, position)
            if not stream.items:
                del self._holding[key]
        controls = self._controls
        released = []
        while controls and controls[0].end is not None and controls[0].end <= position:
            item = controls.popleft()
            self.size_bytes -= len(item.body)
            released.append(item)
        return released

    def _release_stream(self, stream: _Stream, position: int) -> None:
        items, through = stream.items, 0
        for index, item in enumerate(items):
            if item.end is None or item.end > position:
                break
            if item.complete:
                through = index + 1
        for _ in range(through):
            self.size_bytes -= len(items.popleft().body)
        if through:
            stream.released = True

    def forget_session(self, session: int) -> None:
        for from_client in (False, True):
            self._holding.pop((session, from_client), None)
            stream = self._streams.pop((session, from_client), None)
            if stream is not None:
                self.size_bytes -= sum(len(item.body) for item in stream.items)

    def take_stream(self, session: int, from_client: bool) -> list[Kept]:
        """Remove and return what is kept of one stream (it cannot be sent again)."""
        stream = self._streams.get((session, from_client))
        if stream is None:
            return []
        taken = list(stream.items)
        stream.items.clear()
        self._holding.pop((session, from_client), None)
        self.size_bytes -= sum(len(item.body) for item in taken)
        return taken

    def streams(self) -> list[tuple[int, bool]]:
        return [key for key, stream in self._holding.items() if stream.items]

    def in_order(self) -> Iterator[Kept]:
        """Everything kept, in the order it was first handed over."""
        queues = [stream.items for stream in self._holding.values()] + [self._controls]
        return heapq.merge(*queues, key=attrgetter("order"))

    def messages(self) -> int:
        """Messages kept whole: what a recorder that never comes back would not record."""
        return sum(item.messages for s in self._holding.values() for item in s.items)

    def session_numbers(self) -> set[int]:
        """Sessions with stream items kept."""
        return {session for (session, _), s in self._holding.items() if s.items}

    def __bool__(self) -> bool:
        return bool(self._controls) or any(s.items for s in self._holding.values())


def context_takeover(extensions_header: str | None) -> tuple[bool, bool]:
    """(server, client): whether each side's permessage-deflate keeps its compression context
    from message to message (the default), so that a message cannot be inflated without the
    ones before it (RFC 7692 §7.1.1)."""
    for extension in (extensions_header or "").split(","):
        name, *params = (part.strip().lower() for part in extension.split(";"))
        if name == DEFLATE:
            names = {param.split("=")[0].strip() for param in params}
            return (
                "server_no_context_takeover" not in names,
                "client_no_context_takeover" not in names,
            )
    return False, False
