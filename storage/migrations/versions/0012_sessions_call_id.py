"""Add sessions.call_id and sessions.call_role.

Why: a sideband WebSocket (`/v1/realtime?call_id=…`) is the only place a WebRTC or SIP call's
events can be seen; recorded as a session, it must say which call it watches, and whether it is
the application's own sideband or the one rtrec attached itself (`--observe-calls`), so that a
call watched by both shows both connections. Indexed for a call's sessions.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 20:51:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("sessions", sa.Column("call_id", sa.String(length=200), nullable=True))
    op.add_column("sessions", sa.Column("call_role", sa.String(length=16), nullable=True))
    op.create_index(op.f("ix_sessions_call_id"), "sessions", ["call_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_sessions_call_id"), table_name="sessions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("call_role")
        batch.drop_column("call_id")
