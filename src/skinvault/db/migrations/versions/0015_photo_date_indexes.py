"""indexes on the photos' dates

The notification sweep (services/tracking.notice_due_photos, every minute) selects the
photos of the last weeks by capture date or, without one, upload date: an index on each
keeps that from reading the whole photos table.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 14:45:00
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_photos_taken_on"), "photos", ["taken_on"], unique=False)
    op.create_index(op.f("ix_photos_uploaded_at"), "photos", ["uploaded_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_photos_uploaded_at"), table_name="photos")
    op.drop_index(op.f("ix_photos_taken_on"), table_name="photos")
