"""Add calls and call_events.

Why: WebRTC and SIP calls carry their media straight between the caller and OpenAI; what passes
rtrec are the call-control requests (create with an SDP offer, accept, reject, refer, hangup). A
row per call (its API, transport, model, redacted config, key fingerprint, times, end reason,
whether any audio was seen) and a row per step of its life make these calls visible at all.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 20:50:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _payload() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("api", sa.String(length=8), nullable=False),
        sa.Column("transport", sa.String(length=8), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("config", _payload(), nullable=True),
        sa.Column("key_fingerprint", sa.String(length=16), nullable=True),
        sa.Column("create_status", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.Column("offer", _payload(), nullable=True),
        sa.Column("answer", _payload(), nullable=True),
        sa.Column("audio_recorded", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("upstream", sa.Text(), nullable=True),
        sa.Column("client_addr", sa.String(length=100), nullable=True),
        sa.Column("proxy_id", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
    )
    op.create_index(op.f("ix_calls_created_at"), "calls", ["created_at"], unique=False)
    op.create_table(
        "call_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("call_id", sa.String(length=200), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("detail", _payload(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name=op.f("fk_call_events_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_events")),
        sa.UniqueConstraint("call_id", "ts", "kind", name=op.f("uq_call_events_call_id_ts_kind")),
    )


def downgrade() -> None:
    op.drop_table("call_events")
    op.drop_index(op.f("ix_calls_created_at"), table_name="calls")
    op.drop_table("calls")
