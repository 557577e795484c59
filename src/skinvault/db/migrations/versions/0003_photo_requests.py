"""photo requests

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 15:04:02.946087
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "photo_requests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("patient_id", sa.String(length=32), nullable=False),
        sa.Column("requested_by", sa.String(length=32), nullable=True),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("guidance", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("fulfilled_photo_id", sa.String(length=32), nullable=True),
        sa.Column("fulfilled_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["fulfilled_photo_id"],
            ["photos.id"],
            name=op.f("fk_photo_requests_fulfilled_photo_id_photos"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_photo_requests_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name=op.f("fk_photo_requests_requested_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_photo_requests")),
    )
    with op.batch_alter_table("photo_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_photo_requests_patient_id"), ["patient_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("photo_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_photo_requests_patient_id"))

    op.drop_table("photo_requests")
