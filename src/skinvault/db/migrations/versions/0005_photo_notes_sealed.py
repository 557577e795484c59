"""photo notes sealed

Notes are encrypted like the photo they describe (envelope kind "note"). No
deployment predates this revision, so the plain-text column is dropped rather
than converted (a migration cannot reach the key-encryption key).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 15:44:36.585426
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note_enc", sa.LargeBinary(), nullable=True))
        batch_op.drop_column("note")


def downgrade() -> None:
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=False, server_default=""))
        batch_op.drop_column("note_enc")
