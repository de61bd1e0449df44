"""Natural keys on rate_limits, transcriptions and audio_chunks, for idempotent writes.

Why: a batch whose commit succeeded but whose acknowledgement was lost (connection dropped) is
retried; with a unique natural key on every table the writer inserts with ON CONFLICT DO
NOTHING, so the retry neither stores rows twice nor counts stored records as dropped. Events,
sessions and responses already have theirs. Rate limits and transcriptions get the `seq` of the
event they came from (and a rate limit its place among that event's entries); rows recorded
before this revision keep NULL there, which unique indexes do not compare. Unique indexes rather
than constraints: SQLite adds an index without copying the table.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 06:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rate_limits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("position", sa.Integer(), nullable=True))
    with op.batch_alter_table("transcriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
    op.create_index(
        op.f("ix_rate_limits_session_id_seq_position"),
        "rate_limits",
        ["session_id", "seq", "position"],
        unique=True,
    )
    op.create_index(
        op.f("ix_transcriptions_session_id_seq"),
        "transcriptions",
        ["session_id", "seq"],
        unique=True,
    )
    op.create_index(
        op.f("ix_audio_chunks_session_id_seq"), "audio_chunks", ["session_id", "seq"], unique=True
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_audio_chunks_session_id_seq"), table_name="audio_chunks")
    op.drop_index(op.f("ix_transcriptions_session_id_seq"), table_name="transcriptions")
    op.drop_index(op.f("ix_rate_limits_session_id_seq_position"), table_name="rate_limits")
    with op.batch_alter_table("transcriptions", schema=None) as batch_op:
        batch_op.drop_column("seq")
    with op.batch_alter_table("rate_limits", schema=None) as batch_op:
        batch_op.drop_column("position")
        batch_op.drop_column("seq")
