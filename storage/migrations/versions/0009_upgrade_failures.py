"""Add upgrade_failures.

Why: a `/realtime` upgrade the upstream refuses (401, 403, 429) or never answers (unreachable,
TLS failure: the proxy answers 502) creates no session, so nothing showed it but a counter. One
row per failed attempt lets the dashboard show when connections failed, and why.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 07:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "upgrade_failures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("upstream", sa.Text(), nullable=True),
        sa.Column("client_addr", sa.String(length=100), nullable=True),
        sa.Column("proxy_id", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upgrade_failures")),
    )
    op.create_index(op.f("ix_upgrade_failures_ts"), "upgrade_failures", ["ts"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_upgrade_failures_ts"), table_name="upgrade_failures")
    op.drop_table("upgrade_failures")
