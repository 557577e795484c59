"""upload receipts

The SHA-256 of the file the person chose (before scrubbing), next to the hash of
the stored, scrubbed photo, so an upload receipt and the "check a copy" page can
recognise either file. Photos stored before this revision have none (NULL): their
receipts say so.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("photos") as batch:
        batch.add_column(sa.Column("original_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("photos") as batch:
        batch.drop_column("original_sha256")
