"""derivatives that could not be made

A thumbnail job whose photo's pixels do not decode ends at once and records why
(services/thumbnails.py), so the preview says "no preview could be made" instead of
"being prepared" for ever.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 23:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "derivative_failures",
        sa.Column("photo_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("failed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["photo_id"], ["photos.id"], name=op.f("fk_derivative_failures_photo_id_photos")
        ),
        sa.PrimaryKeyConstraint("photo_id", "kind", name=op.f("pk_derivative_failures")),
    )


def downgrade() -> None:
    # the older code knows no "failed" job: it can retry and purge a dead one
    op.execute("UPDATE jobs SET state = 'dead' WHERE state = 'failed'")
    op.drop_table("derivative_failures")
