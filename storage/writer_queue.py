"""What goes through the writer's queue besides one message's records: barriers (flush, close),
commit markers (the recorder's acknowledgements), and messages a relay sent again."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from storage.records import AudioRecord, EventRecord, Record


@dataclass
class Barrier:
    """Queued behind everything submitted before it; set once those records are committed."""

    done: threading.Event = field(default_factory=threading.Event)
    stop: bool = False


class Marker:
    """Queued behind everything submitted before it; `committed` runs once those records are
    committed (or dropped and counted), after the batch that holds the last of them. `soon`:
    someone is waiting for it (a relay short of room): its batch is committed once the queue
    is empty, not at the end of the flush interval."""

    __slots__ = ("committed", "soon")

    def __init__(self, committed: Callable[[], None], soon: bool = False) -> None:
        self.committed = committed
        self.soon = soon


class Replayed(tuple[Record, ...]):
    """One message's records sent again by a relay: some may be stored (storage/replayed.py)."""

    __slots__ = ()


def message_bytes(records: Sequence[Record]) -> int:
    """A message's size as relayed: its event record comes first (call records come from another
    thread, never with one, and session records kept from a full queue count nothing)."""
    first = records[0] if records else None
    return first.size_bytes if type(first) is EventRecord else 0


@dataclass
class Batch:
    records: list[Record] = field(default_factory=list)
    size_bytes: int = 0  # of its messages, as `message_bytes` counts them
    replayed_audio: list[AudioRecord] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    barrier: Barrier | None = None
    soon: bool = False  # it holds a marker someone waits for

    def take(self, item: Sequence[Record] | Barrier | Marker) -> bool:
        """Add `item`; False for a barrier, which ends the batch."""
        if type(item) is Barrier:
            self.barrier = item
            return False
        if type(item) is Marker:
            self.markers.append(item)
            self.soon = self.soon or item.soon
            return True
        if type(item) is Replayed:
            self.replayed_audio.extend(r for r in item if type(r) is AudioRecord)
        self.size_bytes += message_bytes(item)  # type: ignore[arg-type]
        self.records.extend(item)  # type: ignore[arg-type]
        return True
