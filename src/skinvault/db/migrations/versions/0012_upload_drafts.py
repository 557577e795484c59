"""upload drafts and perceptual hashes

A previewed upload is kept (sealed) for a few minutes so the save sends nothing twice;
photos get a 64-bit perceptual hash for the resend guard (NULL for older photos).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("photos") as batch:
        batch.add_column(sa.Column("phash", sa.String(length=16), nullable=True))
    op.create_table(
        "upload_drafts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("patient_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("photo_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("display_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("kek_id", sa.String(length=32), nullable=False),
        sa.Column("format", sa.String(length=10), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("display_width", sa.Integer(), nullable=False),
        sa.Column("display_height", sa.Integer(), nullable=False),
        sa.Column("clues_json", sa.Text(), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("scrubbed_sha256", sa.String(length=64), nullable=False),
        sa.Column("phash", sa.String(length=16), nullable=False),
        sa.Column("taken_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_upload_drafts_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_upload_drafts_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upload_drafts")),
    )
    op.create_index("ix_upload_drafts_user_id", "upload_drafts", ["user_id"])
    op.create_index("ix_upload_drafts_patient_id", "upload_drafts", ["patient_id"])
    op.create_index("ix_upload_drafts_expires_at", "upload_drafts", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_upload_drafts_expires_at", table_name="upload_drafts")
    op.drop_index("ix_upload_drafts_patient_id", table_name="upload_drafts")
    op.drop_index("ix_upload_drafts_user_id", table_name="upload_drafts")
    op.drop_table("upload_drafts")
    with op.batch_alter_table("photos") as batch:
        batch.drop_column("phash")
