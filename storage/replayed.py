"""Records of messages a relay sent again to a recorder that restarted: some may be stored already.

Events are keyed by (session, seq) and skipped when stored, but an audio segment row is keyed by
its first chunk's seq (`storage/audio_segments.py`): re-sent chunks merged with new ones could
land under a stored key (and the new ones be skipped with it) or under a new key (and the stored
ones be stored twice). A message's event and audio are committed together, so the chunks whose
event is stored are the ones to leave out.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select

from storage import models
from storage.records import AudioRecord, Record

_events = models.table(models.Event)


def stored_seqs(connection: Connection, session_id: str, seqs: Sequence[int]) -> set[int]:
    """Which of `seqs` have their event stored for the session."""
    found: set[int] = set()
    for start in range(0, len(seqs), 1000):  # a bound on the statement's parameters
        query = select(_events.c.seq).where(
            _events.c.session_id == session_id, _events.c.seq.in_(seqs[start : start + 1000])
        )
        found.update(connection.scalars(query))
    return found


def without_stored_audio(
    connection: Connection, records: Sequence[Record], replayed: Sequence[AudioRecord]
) -> Sequence[Record]:
    """`records` without the `replayed` audio chunks of messages whose event is stored."""
    seqs_by_session: dict[str, set[int]] = {}
    for record in replayed:
        seqs_by_session.setdefault(record.session_id, set()).add(record.seq)
    stored: set[tuple[str, int]] = set()
    for session_id, seqs in seqs_by_session.items():
        query = select(_events.c.seq).where(
            _events.c.session_id == session_id, _events.c.seq.in_(sorted(seqs))
        )
        stored.update((session_id, seq) for seq in connection.scalars(query))
    if not stored:
        return records
    return [
        record
        for record in records
        if type(record) is not AudioRecord or (record.session_id, record.seq) not in stored
    ]
