"""Leave streamed events out of the events (session_id, type) index.

Why: audio appends and deltas, text and transcript deltas are most of a voice session's events and
no reader asks for them by type, yet the writer inserted an index entry for each (SQLite, writer
benchmark: ~6% of its CPU, and index pages written again at every commit and checkpoint). The
index keeps every other event, so the dashboard's search, error filters and per-session lookups
use it as before: they name its condition (storage/event_index.py), which SQLite requires word
for word. The types are named from protocol's constants (tests/test_protocol_literals.py: no
type is spelled outside protocol/); a later change to which events are indexed takes a new
revision, and a test checks that the index's condition is the one the queries name. Rebuilding
the index reads every event once (seconds on millions of events).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 06:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from protocol import events, live

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNINDEXED = sorted(
    {
        events.AUDIO_APPEND,
        *events.AUDIO_DELTAS,
        *events.TEXT_DELTAS,
        live.INPUT_AUDIO_APPEND,
        live.OUTPUT_AUDIO_DELTA,
    }
)
# One `<>` per type: SQLite evaluates `NOT IN (...)` for each inserted row by building a table of
# the list, which cost the writer more than the whole index.
_CONDITION = " AND ".join(f"type <> '{name}'" for name in _UNINDEXED)
_INDEX = "ix_events_session_id_type"


def upgrade() -> None:
    op.drop_index(op.f(_INDEX), table_name="events")
    op.create_index(
        op.f(_INDEX),
        "events",
        ["session_id", "type"],
        unique=False,
        sqlite_where=sa.text(_CONDITION),
        postgresql_where=sa.text(_CONDITION),
    )


def downgrade() -> None:
    op.drop_index(op.f(_INDEX), table_name="events")
    op.create_index(op.f(_INDEX), "events", ["session_id", "type"], unique=False)
