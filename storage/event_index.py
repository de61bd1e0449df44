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

# Sorted: one spelling of the condition, the same in the index and in every query.
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


# The index's condition, as its migration (0013) writes it: one `<>` per type, not `NOT IN
# (...)`, which SQLite evaluates for each inserted row by building a table of the list (the
# writer then spent more CPU than on the whole index).
INDEXED_CONDITION = " AND ".join(f"type <> {_quoted(name)}" for name in UNINDEXED_TYPES)


def of_types(type_column: ColumnElement[str], types: Collection[str]) -> ColumnElement[bool]:
    """`type_column` is one of `types`; with the index's condition when every one of them is in
    the index, so that the query may use it (each term inline, as the index has it)."""
    condition: ColumnElement[bool] = type_column.in_(sorted(types))
    if set(types).isdisjoint(UNINDEXED_TYPES):
        kept_out = [type_column != literal_column(_quoted(name)) for name in UNINDEXED_TYPES]
        condition = and_(condition, *kept_out)
    return condition
