"""break glass review

The privacy officer's queue of emergency accesses outside the care team: one case per
clinician, patient and reason while it is open; reviewed (with a note) or escalated.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 21:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "break_glass_reviews",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("patient_id", sa.String(length=32), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("clinician_id", sa.String(length=64), nullable=False),
        sa.Column("clinician", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("last_at", sa.DateTime(), nullable=False),
        sa.Column("first_seq", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("accesses", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_break_glass_reviews_patient_id", "break_glass_reviews", ["patient_id"])
    op.create_index("ix_break_glass_reviews_clinician_id", "break_glass_reviews", ["clinician_id"])
    op.create_index("ix_break_glass_reviews_state", "break_glass_reviews", ["state"])


def downgrade() -> None:
    op.drop_index("ix_break_glass_reviews_state", table_name="break_glass_reviews")
    op.drop_index("ix_break_glass_reviews_clinician_id", table_name="break_glass_reviews")
    op.drop_index("ix_break_glass_reviews_patient_id", table_name="break_glass_reviews")
    op.drop_table("break_glass_reviews")
