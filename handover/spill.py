"""What the relay hands over while the recorder is behind, past its memory bound: kept on disk,
in order, until there is room in memory to send it (the relay's `Sender`).

A blast that the relay forwards faster than the recorder can commit (a burst of sessions, an
audio file sent at once) would otherwise be dropped at the memory bound. Here it waits in an
unlinked temporary file, bounded in bytes, encrypted with a key that only this process holds
(the traffic can carry secrets: nothing readable of it may outlive the process on disk).
Items go in as `Kept` and come out as equal `Kept`, first in, first out, in chunks of
`CHUNK_BYTES`, each encrypted with AES-CTR from its own counter block.
"""

from __future__ import annotations

import logging
import os
import struct
import tempfile
import time
from collections import deque
from typing import IO

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from handover.resend import Kept

logger = logging.getLogger(__name__)

# Items are gathered in memory up to this many bytes, then written as one encrypted chunk.
CHUNK_BYTES = 256 * 1024
# kind, flags, session, seq, ts, messages, complete, body length
_ITEM = struct.Struct("<BBIQdI?I")
_CHUNK = struct.Struct("<I")  # a chunk's length on disk, in front of it
_COUNTER_SHIFT = 64  # chunk n's counter blocks start at n << 64: no two chunks share a block


def _encode(item: Kept) -> bytes:
    return _ITEM.pack(
        item.kind,
        item.flags,
        item.session,
        item.seq,
        item.ts,
        item.messages,
        item.complete,
        len(item.body),
    )


def _decode(plain: bytes) -> list[Kept]:
    items, at, size = [], 0, len(plain)
    while at < size:
        kind, flags, session, seq, ts, messages, complete, length = _ITEM.unpack_from(plain, at)
        at += _ITEM.size
        body = plain[at : at + length]
        items.append(Kept(kind, flags, session, seq, ts, body, messages, complete))
        at += length
    return items


class Spill:
    """A first-in, first-out queue of `Kept` items in a temporary file of at most `limit_bytes`
    (0: nothing is spilled). The file is made at the first item, in `directory` (the system's
    temporary directory by default), and emptied whenever everything was taken out again."""

    def __init__(self, limit_bytes: int, directory: str | None = None) -> None:
        self.limit_bytes = limit_bytes
        self._directory = directory
        self._file: IO[bytes] | None = None
        self._key = os.urandom(32)
        self._written = 0  # bytes of the file (chunks written since it was last emptied)
        self._read = 0  # of those, bytes taken out
        self._chunks_written = 0
        self._chunks_read = 0
        self._gathering: list[Kept] = []  # items not yet in a chunk, as they came
        self._buffered = 0  # their bytes once encoded
        self._front: deque[Kept] = deque()  # a chunk read back, not yet taken
        self.size_bytes = 0  # bodies of the items held, wherever they are
        self.messages = 0  # messages the items held end
        self._items = 0
        self._sessions: dict[int, int] = {}  # stream items held, by session
        # The most bytes the file held (its chunks and the items gathering) since `take_peak`.
        self._peak_bytes = 0

    def __bool__(self) -> bool:
        return self._items > 0

    def __len__(self) -> int:
        return self._items

    def append(self, item: Kept, force: bool = False) -> bool:
        """Hold `item` last; False if it does not fit under the bound (unless `force`: control
        items, a few dozen bytes, are never refused)."""
        size = _ITEM.size + len(item.body)
        if not force and self._written + self._buffered + size > self.limit_bytes:
            return False
        self._gathering.append(item)
        self._buffered += size
        self._peak_bytes = max(self._peak_bytes, self._written + self._buffered)
        self._count(item, 1)
        if self._buffered >= CHUNK_BYTES:
            self._write_chunk()
        return True

    def next_size(self) -> int:
        """Body bytes of the item `pop` would return (0 when empty)."""
        if not self._items:
            return 0
        self._fill_front()
        return len(self._front[0].body)

    def pop(self) -> Kept:
        """The first item held; IndexError when empty."""
        if not self._items:
            raise IndexError("spill is empty")
        self._fill_front()
        item = self._front.popleft()
        self._count(item, -1)
        if not self._items:
            self._reset()
        return item

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def take_peak(self) -> int:
        """The most bytes held since the last call."""
        peak, self._peak_bytes = self._peak_bytes, 0
        return peak

    def sessions(self) -> set[int]:
        """Sessions with messages held."""
        return set(self._sessions)

    def _count(self, item: Kept, sign: int) -> None:
        self._items += sign
        self.size_bytes += sign * len(item.body)
        if item.messages:
            self.messages += sign * item.messages
            held = self._sessions.get(item.session, 0) + sign
            if held:
                self._sessions[item.session] = held
            else:
                del self._sessions[item.session]

    def _fill_front(self) -> None:
        if self._front:
            return
        if self._chunks_read < self._chunks_written:
            self._front.extend(_decode(self._read_chunk()))
        else:  # everything on disk is taken: the items still gathering come next, as they are
            self._front.extend(self._gathering)
            self._gathering, self._buffered = [], 0

    def _cipher(self, chunk: int) -> Cipher[modes.CTR]:
        counter = (chunk << _COUNTER_SHIFT).to_bytes(16, "big")
        return Cipher(algorithms.AES(self._key), modes.CTR(counter))

    def _write_chunk(self) -> None:
        plain = b"".join(part for item in self._gathering for part in (_encode(item), item.body))
        encryptor = self._cipher(self._chunks_written).encryptor()
        sealed = encryptor.update(plain) + encryptor.finalize()
        self._gathering, self._buffered = [], 0
        if self._file is None:
            # Closed by `close` (the relay's shutdown), unlinked from the start.
            self._file = tempfile.TemporaryFile(  # noqa: SIM115
                prefix="rtrec-spill-", dir=self._directory
            )
        os.pwrite(self._file.fileno(), _CHUNK.pack(len(sealed)) + sealed, self._written)
        self._written += _CHUNK.size + len(sealed)
        self._chunks_written += 1

    def _read_chunk(self) -> bytes:
        assert self._file is not None
        fd = self._file.fileno()
        (length,) = _CHUNK.unpack(os.pread(fd, _CHUNK.size, self._read))
        sealed = os.pread(fd, length, self._read + _CHUNK.size)
        self._read += _CHUNK.size + length
        decryptor = self._cipher(self._chunks_read).decryptor()
        self._chunks_read += 1
        return decryptor.update(sealed) + decryptor.finalize()

    def _reset(self) -> None:
        """Empty: the file starts over (its disk space given back)."""
        if self._file is not None and self._written:
            os.ftruncate(self._file.fileno(), 0)
        self._written = self._read = self._chunks_written = self._chunks_read = 0
        self._gathering, self._buffered = [], 0
        self._front.clear()


class SpillLog:
    """Tells the operator when the relay starts keeping hand-over on disk (the recorder is
    behind) and, once it caught up, the most that waited; at most once per `EVERY_S`."""

    EVERY_S = 60.0

    def __init__(self) -> None:
        self._next_at = 0.0
        self._told = False

    def started(self) -> None:
        now = time.monotonic()
        if now >= self._next_at:
            self._next_at, self._told = now + self.EVERY_S, True
            logger.info("recorder behind: hand-over past the memory bound waits on disk")

    def ended(self, peak_bytes: int) -> None:
        if self._told:
            self._told = False
            logger.info(
                "recorder caught up: at most %.1f MiB waited on disk", peak_bytes / 1024 / 1024
            )
