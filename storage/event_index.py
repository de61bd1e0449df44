"""Which events the `events (session_id, type)` index holds, and how a read by type uses it.

Streamed events (audio appends and deltas, text and transcript deltas) are most of a voice
session's events and no reader asks for them by type: the index leaves them out, which saves the
writer an index entry per audio event. SQLite uses a partial index only when the query names the
index's condition word for word, so every read of events by type goes through `of_types`.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import ColumnElement, and_, literal_column

from protocol import events, live

# Sorted: SQLite compares the query's list with the index's item by item, in order.
UNINDEXED_TYPES = tuple(
    sorted(
        {
            events.AUDIO_APPEND,
            *events.AUDIO_DELTAS,
            *events.TEXT_DELTAS,
            live.INPUT_AUDIO_APPEND,
            live.OUTPUT_AUDIO_DELTA,
        }
    )
)


def _quoted(text: str) -> str:
    return "'{}'".format(text.replace("'", "''"))


# The index's condition, as its migration (0013) writes it.
INDEXED_CONDITION = "type NOT IN ({})".format(", ".join(map(_quoted, UNINDEXED_TYPES)))


def of_types(type_column: ColumnElement[str], types: Collection[str]) -> ColumnElement[bool]:
    """`type_column` is one of `types`; with the index's condition when every one of them is in
    the index, so that the query may use it (the list inline, as the index has it)."""
    condition: ColumnElement[bool] = type_column.in_(sorted(types))
    if set(types).isdisjoint(UNINDEXED_TYPES):
        inline: list[ColumnElement[str]] = [
            literal_column(_quoted(name)) for name in UNINDEXED_TYPES
        ]
        condition = and_(condition, type_column.not_in(inline))
    return condition
