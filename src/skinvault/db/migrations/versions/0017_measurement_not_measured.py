"""a measurement may hold no value

A photo whose skin is overexposed (a colour channel clipped) or shows too little skin is
not measured (tracking/measure.py, method version 5): its depigmented-share row holds no
value, and its notes say why and what to do.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 23:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("measurements", schema=None) as batch_op:
        batch_op.alter_column("value", existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    # A measurement is a set of rows (depigmented share, skin share) made at one moment: the
    # whole set of one not measured goes, so no lone skin share is left for the older code.
    op.execute(
        "DELETE FROM measurements WHERE EXISTS (SELECT 1 FROM measurements AS absent"
        " WHERE absent.value IS NULL AND absent.photo_id = measurements.photo_id"
        " AND absent.measured_at = measurements.measured_at)"
    )
    with op.batch_alter_table("measurements", schema=None) as batch_op:
        batch_op.alter_column("value", existing_type=sa.Float(), nullable=False)
