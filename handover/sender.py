"""The relay's end of the hand-over: never blocks, never raises, keeps what the recorder has not
acknowledged (`handover/resend.py`), past its bound on disk (`handover/spill.py`), and sends it
again to a recorder that restarted. The socket itself is `handover/channel.py`'s."""

from __future__ import annotations

import dataclasses
import logging
import select
import time
from typing import Any

import orjson

from handover.channel import Channel
from handover.drops import DropTally
from handover.resend import RESEND_LIMIT_BYTES, Kept, Unacked, context_takeover
from handover.spill import Spill, SpillLog
from handover.wire import (
    ACK,
    CLOSE,
    DROPPED,
    FROM_CLIENT,
    HEADER,
    HELLO,
    IS_TEXT,
    MESSAGE,
    OPEN,
    RAW,
    REPLAY,
    RESYNC,
    Decoder,
    control,
)

logger = logging.getLogger(__name__)

# Largest part of one message the relay keeps (what is kept of a stream is released only at
# the end of a message): 32 MiB, twice the 16 MB messages rtrec records. With the spill there
# is no other bound on it: a message of a gigabyte would otherwise be kept whole, in memory,
# by the relay and by the recorder's frame parser.
MESSAGE_LIMIT_BYTES = 32 * 1024 * 1024


class Sender:
    """The relay's end: never blocks, never touches a frame. What it hands over is kept until
    the recorder acknowledges it (`handover/resend.py`) and is sent from those same bytes."""

    def __init__(
        self,
        path: str,
        limit_bytes: int = RESEND_LIMIT_BYTES,
        spill_limit_bytes: int = 0,
        spill_directory: str | None = None,
        message_limit_bytes: int = MESSAGE_LIMIT_BYTES,
    ) -> None:
        self._channel = Channel(
            path, self._connected, self._before_flush, self.read_acknowledgements, self._lost
        )
        self._limit_bytes = limit_bytes
        # Past `limit_bytes` in memory, what is handed over waits on disk, in order (while
        # anything waits there, everything after it does too), and is dropped only past this.
        self._spill = Spill(spill_limit_bytes, spill_directory)
        self._spill_log = SpillLog()
        # Bytes of each stream since it was last between messages: a message is kept whole until
        # it is committed, so one larger than this is dropped (and counted) from there on.
        self._message_limit = message_limit_bytes
        self._unfinished: dict[tuple[int, bool], int] = {}
        self._acked = 0  # of the current connection's stream, acknowledged by the recorder
        self._unacked = Unacked()
        self._acks = Decoder()
        # Sessions not yet closed in storage, by number: their OPEN item, told again to a new
        # recorder; forgotten once the recorder acknowledges their CLOSE.
        self._open: dict[int, bytes] = {}
        # Streams a recorder cannot inflate after a gap (permessage-deflate's context takeover),
        # and those that had one: their messages are dropped (`deflate_context`).
        self._takeover: set[tuple[int, bool]] = set()
        self._inflate_lost: set[tuple[int, bool]] = set()
        # What no recorder could be sent again of those streams: checked against the store.
        self._unreadable: list[bytes] = []
        self._drops = DropTally()

    @property
    def dropped(self) -> int:
        """Messages dropped since the relay started."""
        return self._drops.dropped

    @property
    def connected(self) -> bool:
        return self._channel.sock is not None

    @property
    def connections(self) -> int:
        """How many times it connected."""
        return self._channel.connections

    @property
    def unacknowledged_bytes(self) -> int:
        """Kept in memory: sent, or about to be, and not acknowledged."""
        return self._unacked.size_bytes

    @property
    def spilled_bytes(self) -> int:
        """Waiting on disk for room in memory."""
        return self._spill.size_bytes

    def connect(self) -> bool:
        """Connect (again) to the recorder; True when connected. Safe to call at any time."""
        return self._channel.connect()

    def _connected(self) -> None:
        """A new recorder knows nothing: every open session first, then what is not committed."""
        self._acks, self._acked = Decoder(), 0
        send = self._channel.append
        send(control(HELLO))
        for opened in self._open.values():  # not kept: told again on every connect
            send(opened)
        self._resend()
        self._unspill()
        self._report_drops()

    def open(self, session: int, **fields: Any) -> None:
        item = control(OPEN, session, **fields)
        self._open[session] = item
        if fields.get("raw"):
            server, client = context_takeover(fields.get("extensions"))
            self._takeover.update(
                key for key, on in (((session, False), server), ((session, True), client)) if on
            )
        if self._channel.sock is not None:
            self._channel.append(item)
            self._channel.schedule_flush()

    def close(self, session: int, **fields: Any) -> None:
        self._control(CLOSE, session, fields)

    def notice(self, kind: int, **fields: Any) -> None:
        """A control item that is not about one session (refused or unrecorded upgrades, call
        requests)."""
        self._control(kind, 0, fields)

    def _control(self, kind: int, session: int, fields: dict[str, Any]) -> None:
        """Kept until acknowledged, never dropped: a session's close must reach storage."""
        item = Kept(kind, 0, session, 0, time.time(), orjson.dumps(fields))
        if self._spill:  # behind what waits on disk (a CLOSE after its session's messages)
            self._spill.append(item, force=True)
            return
        self._unacked.keep_control(item)
        if self._channel.sock is not None:
            self._emit(item, 0)
            self._channel.schedule_flush()

    def message(
        self, session: int, seq: int, from_client: bool, is_text: bool, ts: float, content: bytes
    ) -> None:
        """Hand one relayed message over, or count it as dropped: never raises, never waits."""
        flags = (FROM_CLIENT if from_client else 0) | (IS_TEXT if is_text else 0)
        item = Kept(MESSAGE, flags, session, seq, ts, content, 1)
        if not self._hand_over(item, (session, from_client)):
            self._drop(session, from_client, len(content))

    def raw(
        self,
        session: int,
        from_client: bool,
        ts: float,
        chunk: bytes,
        seq: int,
        resync: bool = False,
        messages: int = 0,
        complete: bool = True,
    ) -> bool:
        """Hand one relayed chunk of a WebSocket stream over; False when it was not (dropped: the
        caller counts its messages with `dropped_raw`). `resync`: the chunk starts a message
        after a gap; `messages`: how many it ends; `complete`: it ends between messages."""
        key = (session, from_client)
        if self._inflate_lost and key in self._inflate_lost:
            return False
        unfinished = (0 if resync else self._unfinished.get(key, 0)) + len(chunk)
        if unfinished > self._message_limit:
            return False  # the caller drops it, and what follows until a message starts
        self._unfinished[key] = 0 if complete else unfinished
        flags = (FROM_CLIENT if from_client else 0) | (RESYNC if resync else 0)
        return self._hand_over(Kept(RAW, flags, session, seq, ts, chunk, messages, complete), key)

    def _hand_over(self, item: Kept, key: tuple[int, bool]) -> bool:
        """Keep a stream item and send it; past the bound in memory, or behind what waits on
        disk, it waits on disk too. False when there is no room there either."""
        if self._spill or self._unacked.size_bytes + len(item.body) > self._limit_bytes:
            if not self._spill:
                self._spill_log.started()
            return self._spill.append(item)
        self._unacked.keep_stream(item, key)
        channel = self._channel
        if channel.sock is not None:
            self._emit(item, item.flags)
            if not channel.flush_scheduled:
                channel.schedule_flush()
        return True

    def dropped_raw(self, session: int, from_client: bool, messages: int, size: int) -> None:
        """Count the messages of a raw chunk that could not be handed over."""
        if not messages and not size:
            return
        key = (session, from_client)
        reason = "deflate_context" if key in self._inflate_lost else None
        self._drop(session, from_client, size, messages, reason)
        if key in self._takeover:  # a gap: what follows cannot be inflated without it
            self._inflate_lost.add(key)

    def flush(self) -> None:
        """Write what the socket takes now; the rest waits for it to become writable."""
        self._channel.flush()

    def _before_flush(self) -> None:
        if self._drops.pending:
            self._report_drops()

    def drain(self, timeout_s: float, quiet_s: float | None = None) -> bool:
        """Block until the recorder acknowledged everything (at shutdown); False if it did not
        within `timeout_s`, or acknowledged nothing for `quiet_s`, or is not there: then what
        is left is logged."""
        quiet = timeout_s if quiet_s is None else quiet_s
        now = time.monotonic()
        deadline, quiet_until = now + timeout_s, now + quiet
        acked = self._acked
        self._report_drops()
        channel = self._channel
        while channel.sock is not None and (channel.parts or self._unacked or self._spill):
            channel.flush()  # what acknowledgements let out of the spill too
            now = time.monotonic()
            if self._acked != acked:  # the recorder is committing: it gets more time
                acked = self._acked
                quiet_until = now + quiet
            remaining = min(deadline, quiet_until) - now
            if channel.sock is None or remaining <= 0:
                break
            wait_s = min(remaining, 0.005) if channel.parts else remaining
            readable, _, _ = select.select([channel.sock], [], [], wait_s)
            if readable:
                self.read_acknowledgements()
        left = self._unacked.messages() + self._spill.messages
        sessions = len(self._unacked.session_numbers() | self._spill.sessions())
        if (self._unacked or self._spill) and channel.sock is None:
            logger.error(
                "shutdown: recorder down; %d message(s) of %d session(s) relayed but not recorded",
                left,
                sessions,
            )
        elif self._unacked or self._spill:
            logger.warning(
                "shutdown: %d message(s) of %d session(s) handed over, not yet acknowledged",
                left,
                sessions,
            )
        return not (self._unacked or self._spill)

    def shutdown(self) -> None:
        self._channel.close()
        self._spill.close()

    def read_acknowledgements(self) -> None:
        """Read what the recorder wrote back (the event loop calls it when the socket is
        readable); an end of file means the recorder went away."""
        data = self._channel.recv()
        if not data:
            return
        for item in self._acks.feed(data):
            if item.kind == ACK:
                self._acknowledged(item.seq)
        if self._spill:
            self._unspill()

    def _acknowledged(self, position: int) -> None:
        self._acked = position
        for item in self._unacked.acknowledged(position):
            if item.kind == CLOSE:  # closed in storage: nothing of it is sent again
                self._open.pop(item.session, None)
                self._unacked.forget_session(item.session)
                for key in ((item.session, False), (item.session, True)):
                    self._unfinished.pop(key, None)
                    self._takeover.discard(key)
                    self._inflate_lost.discard(key)
            elif item.kind == DROPPED:
                self._drops.acknowledged(orjson.loads(item.body))

    def _unspill(self) -> None:
        """Send on what waits on disk while what is sent and not acknowledged stays under the
        bound (one item at least, however large, once everything sent is acknowledged). The
        bound is on what is in flight, not on what is kept: an acknowledged chunk that ends in
        the middle of a message stays kept until the message's end is acknowledged too."""
        spill, unacked, channel = self._spill, self._unacked, self._channel
        if channel.sock is None:
            return
        while spill:
            in_flight = channel.position - self._acked
            if in_flight and in_flight + spill.next_size() > self._limit_bytes:
                break
            item = spill.pop()
            if item.kind != RAW and item.kind != MESSAGE:
                unacked.keep_control(item)
            else:
                key = (item.session, bool(item.flags & FROM_CLIENT))
                if key in self._inflate_lost:  # after a gap: it cannot be inflated
                    self._drop(
                        item.session, key[1], len(item.body), item.messages, "deflate_context"
                    )
                    continue
                unacked.keep_stream(item, key)
            self._emit(item, item.flags)
        if not spill:
            self._spill_log.ended(spill.take_peak())
        if not channel.flush_scheduled:
            channel.schedule_flush()

    # ------------------------------------------------------------------------------- internals

    def _unreadable_item(self, key: tuple[int, bool]) -> bytes:
        """What a recorder that restarted cannot inflate (deflate's context takeover): the dead
        one may have committed some of it without acknowledging it, so the new one counts as
        dropped those whose event is not stored (`unless_stored`: ranges of seqs)."""
        session, from_client = key
        taken = self._unacked.take_stream(session, from_client)
        opened = orjson.loads(self._open[session][HEADER.size :])
        return control(
            DROPPED,
            session,
            reason="deflate_context",
            session_id=opened.get("id"),
            unless_stored=[[item.seq, item.messages] for item in taken if item.messages],
        )

    def _emit(self, item: Kept, flags: int) -> None:
        body, channel = item.body, self._channel
        channel.append(HEADER.pack(item.kind, flags, item.session, item.seq, item.ts, len(body)))
        channel.append(body)
        item.end = channel.position

    def _resend(self) -> None:
        """To a recorder that restarted: what the one before did not commit, in order, each stream
        from a message's start (`RESYNC`), marked as possibly stored already (`REPLAY`)."""
        for key in self._unacked.streams():
            if key in self._takeover and self._unacked.seen_before(*key):
                self._inflate_lost.add(key)
                self._unreadable.append(self._unreadable_item(key))
        for unreadable in self._unreadable:  # told every recorder: the store decides
            self._channel.append(unreadable)
        started: set[tuple[int, bool]] = set()
        for item in self._unacked.in_order():
            flags = item.flags | (REPLAY if item.end is not None else 0)
            if item.kind == RAW or item.kind == MESSAGE:
                key = (item.session, bool(item.flags & FROM_CLIENT))
                if key not in started:
                    started.add(key)
                    flags |= RESYNC if item.kind == RAW else 0
            self._emit(item, flags)
        for reason, drops in self._drops.earlier.items():  # not kept: sent again on every connect
            self._channel.append(
                control(DROPPED, 0, reason=reason, earlier=True, **dataclasses.asdict(drops))
            )

    def _lost(self, exc: OSError) -> None:
        logger.error(
            "recorder connection lost; %d unacknowledged byte(s) kept for it in memory and up to"
            " %d MiB more on disk; past that, messages are dropped and counted until it is back",
            self._unacked.size_bytes,
            self._spill.limit_bytes // (1024 * 1024),
        )

    def _drop(
        self,
        session: int,
        from_client: bool,
        size: int,
        messages: int = 1,
        reason: str | None = None,
    ) -> None:
        if reason is None:
            reason = "recorder_down" if self._channel.sock is None else "handover_full"
        self._drops.add(session, from_client, size, messages, reason)
        if self._channel.sock is None:
            self._channel.schedule_reconnect()

    def _report_drops(self) -> None:
        if self._channel.sock is None:
            return
        for (session, reason), counts in self._drops.take().items():
            self._control(DROPPED, session, {"reason": reason, **dataclasses.asdict(counts)})
