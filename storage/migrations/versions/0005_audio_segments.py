"""Audio segments: one audio_chunks row may hold several consecutive chunks.

Why: a row per chunk capped the writer at a few thousand audio events a second (issue 15); rows
now hold the consecutive chunks of one side and response from one batch, with `last_seq` and
`chunks` (each chunk's seq, time offset and length) so that readers rebuild every chunk. Existing
rows stay single-chunk rows (`chunks` NULL) and are read as before.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audio_chunks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("chunks", sa.Text(), nullable=True))


def downgrade() -> None:
    # Segments cannot be represented without `chunks`: a downgrade keeps only single-chunk rows.
    op.execute("DELETE FROM audio_chunks WHERE chunks IS NOT NULL")
    with op.batch_alter_table("audio_chunks", schema=None) as batch_op:
        batch_op.drop_column("chunks")
        batch_op.drop_column("last_seq")
