"""Add sessions.proxy_id.

Why: a proxy killed with SIGKILL (or a machine that lost power) leaves its open sessions without
an end, and they would show as live forever. Each session now names the proxy that recorded it
(host and listen port), so a proxy starting again closes the sessions it left open, and only
those: with PostgreSQL several proxies share the table. Indexed with ended_at for that lookup.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("sessions", sa.Column("proxy_id", sa.String(length=300), nullable=True))
    op.create_index(
        op.f("ix_sessions_proxy_id_ended_at"), "sessions", ["proxy_id", "ended_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_sessions_proxy_id_ended_at"), table_name="sessions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("proxy_id")
