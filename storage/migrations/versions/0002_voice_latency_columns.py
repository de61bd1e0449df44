"""Voice latency columns on responses: turn latency and voice-to-voice, measured at the proxy.

Why: users judge a voice agent by these two numbers; they need the proxy's frame timestamps,
so they are stored with the response rather than derived later.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 10:07:22.365165
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("turn_latency_ms", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("voice_to_voice_ms", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.drop_column("voice_to_voice_ms")
        batch_op.drop_column("turn_latency_ms")
