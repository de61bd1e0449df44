"""SQLite: the WAL moved into the database file on a thread of its own, beside the writer.

A checkpoint copies every page the commits put in the WAL into the database file and syncs it:
for voice traffic, the audio is written a second time. SQLite runs it inside the commit that
finds the WAL past `wal_autocheckpoint` pages, on the writer's thread, which then writes nothing
else (a third of the writer's time in the writer benchmark). SQLite lets a checkpoint run beside
a writer in WAL mode, and the sqlite3 module releases the GIL while SQLite works, so here the
writer only appends to the WAL and this thread, on the machine's other core, moves it into the
file. The autocheckpoint stays as it was, a net: it runs only if this thread falls behind.

A passive checkpoint never waits for the writer or for readers. It moves what was committed when
it started; the WAL starts again from its beginning (and stops growing) at the first commit after
a checkpoint that moved everything, so each turn repeats until one moved all there was. A reader
holding an older snapshot (the dashboard mid-query) may keep it from moving everything: the turn
ends when a checkpoint moved nothing new.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import PoolProxiedConnection

from storage.db import error_reason

logger = logging.getLogger(__name__)

# The writer asks for a checkpoint once it has committed this much since the last one (two of
# its batches under a backlog): each index page goes into the file once per checkpoint however
# often it changed. Writer benchmark, 40,000 voice events: after every batch 77-80k events/s and
# 6,780 bytes written per event; every 8 MiB 77-78k, 6,370; every 16 MiB 70k, 6,200; on commit
# (the autocheckpoint's 4,000 pages) 59-61k, 6,015.
CHECKPOINT_EVERY_BYTES = 8 * 1024 * 1024
CHECKPOINT_NICE = 10


def catch_up(connection: PoolProxiedConnection) -> tuple[int, bool]:
    """Passive checkpoints on `connection` until one moved everything in the WAL, or moved
    nothing new (a reader's snapshot holds the rest back); (checkpoints run, all moved)."""
    runs, moved = 0, -1
    while True:
        cursor = connection.cursor()
        try:
            busy, in_wal, now_moved = cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            cursor.close()
        runs += 1
        if busy or now_moved >= in_wal or now_moved <= moved:
            return runs, not busy and now_moved >= in_wal
        moved = now_moved


class Checkpointer:
    """Moves the WAL into the database file whenever the writer has committed `every_bytes`."""

    def __init__(self, engine: Engine, every_bytes: int = CHECKPOINT_EVERY_BYTES) -> None:
        self._engine = engine
        self._every_bytes = every_bytes
        self._committed_bytes = 0  # since the last request; the writer's thread alone
        self._wanted = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="rtrec-checkpoint", daemon=True)
        self._failing = False  # the last turn failed: logged once until one works again

    def start(self) -> None:
        self._thread.start()

    def committed(self, size_bytes: int) -> None:
        """The writer committed a batch of `size_bytes` (of relayed messages)."""
        self._committed_bytes += size_bytes
        if self._committed_bytes >= self._every_bytes:
            self._committed_bytes = 0
            self._wanted.set()

    def close(self) -> None:
        """Stop after the checkpoints under way, if any."""
        self._stopping = True
        self._wanted.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        _lower_priority()
        try:
            connection = self._engine.raw_connection()
        except SQLAlchemyError as exc:  # the writer reports an unavailable database
            logger.warning(
                "no checkpoint thread (%s): SQLite checkpoints on commit", error_reason(exc)
            )
            return
        try:
            while True:
                self._wanted.wait()
                self._wanted.clear()
                if self._stopping:
                    return
                try:
                    catch_up(connection)
                except Exception as exc:  # whatever fails, the autocheckpoint is still there
                    if not self._failing:
                        logger.warning("background checkpoint failed: %s", error_reason(exc))
                    self._failing = True
                    continue
                self._failing = False
        finally:
            connection.close()


def _lower_priority() -> None:
    """This thread yields the CPU to the relays and the recorder's loop: on Linux a thread has a
    nice value of its own. Falling behind only leaves more for SQLite's autocheckpoint."""
    # Elsewhere than Linux, or not allowed: checkpoints at the recorder's priority.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), CHECKPOINT_NICE)
