"""Add GPT-Live usage: sessions' billable seconds, context usage, end reason; responses' model.

Why: GPT-Live bills per second of session (cumulative `session.usage.updated`, final in
`session.closed`), not per token, and its delegated Responses/Decisions work is priced by the
delegation's own model. The sessions get the last cumulative usage, its cost, the context-window
ratio, whether `session.closed` confirmed it and why the session ended; a response row can name
its own model (NULL: the session's) and the delegation that ran it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 20:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SESSION_COLUMNS = (
    ("billable_seconds", sa.Float()),
    ("active_seconds", sa.Float()),
    ("paused_seconds", sa.Float()),
    ("context_usage_ratio", sa.Float()),
    ("seconds_cost_usd", sa.Float()),
    ("usage_final", sa.Boolean()),
    ("end_reason", sa.String(length=64)),
)
_RESPONSE_COLUMNS = (
    ("model", sa.String(length=200)),
    ("delegation_id", sa.String(length=200)),
)


def upgrade() -> None:
    for name, kind in _SESSION_COLUMNS:
        op.add_column("sessions", sa.Column(name, kind, nullable=True))
    for name, kind in _RESPONSE_COLUMNS:
        op.add_column("responses", sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("responses") as batch:
        for name, _ in _RESPONSE_COLUMNS:
            batch.drop_column(name)
    with op.batch_alter_table("sessions") as batch:
        for name, _ in _SESSION_COLUMNS:
            batch.drop_column(name)
