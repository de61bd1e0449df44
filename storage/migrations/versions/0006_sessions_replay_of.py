"""Add sessions.replay_of.

Why: `rtrec replay` records its replay as a new session linked to the one it replays, so
`rtrec diff` and the dashboard can find a session's replays (indexed for that lookup). No foreign
key: the original may be pruned while its replays are kept.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("sessions", sa.Column("replay_of", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_sessions_replay_of"), "sessions", ["replay_of"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_sessions_replay_of"), table_name="sessions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("replay_of")
