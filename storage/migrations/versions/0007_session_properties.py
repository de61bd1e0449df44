"""Create session_properties.

Why: clients tag sessions with `Rtrec-Property-<Name>` headers (customer, environment, prompt
version) so cost and tokens can be attributed by them; one row per tag, unique per session, and
indexed by (name, value) for the filters and group-bys of the CLI and the dashboard.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 09:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "session_properties",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_session_properties_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_properties")),
        sa.UniqueConstraint(
            "session_id", "name", name=op.f("uq_session_properties_session_id_name")
        ),
    )
    op.create_index(
        op.f("ix_session_properties_name_value"),
        "session_properties",
        ["name", "value"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_session_properties_name_value"), table_name="session_properties")
    op.drop_table("session_properties")
