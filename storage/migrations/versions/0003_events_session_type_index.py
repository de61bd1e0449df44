"""Index events by (session_id, type).

Why: the dashboard asks per session for events of a few types (errors for the "has errors" filter
and the error counts, transcript and text events for the free-text search, the conversation
events of one session). Without it each of those reads every event of every session: 8 s for a
search and 1 s for the error filter on 10,000 sessions / 5,000,000 events, against well under a
second with it (benchmarks/dashboard_bench.py).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 10:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_events_session_id_type"), "events", ["session_id", "type"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_events_session_id_type"), table_name="events")
