"""photo versions (derivatives)

Versions of a photo made for a consent's limits or for browsers (display,
face_free, cropped, deidentified and their combinations) are rows of
``derivatives`` like the thumbnail: sealed with their own data key and shredded
with the photo. Two columns record how each was made: ``spec_json`` (the boxes
covered and the region kept) and ``confirmed_by`` (who confirmed those boxes).
``photo_markups`` holds what the patient or clinician chose for a photo (face
boxes confirmed or added, the crop region) and the detector's own boxes, so a
version can be made again the same way.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("derivatives") as batch:
        batch.add_column(sa.Column("spec_json", sa.Text(), nullable=True))
        batch.add_column(sa.Column("confirmed_by", sa.String(length=32), nullable=True))
    op.create_table(
        "photo_markups",
        sa.Column("photo_id", sa.String(length=32), nullable=False),
        sa.Column("detected_json", sa.Text(), nullable=True),
        sa.Column("boxes_json", sa.Text(), nullable=False),
        sa.Column("crop_json", sa.Text(), nullable=True),
        sa.Column("confirmed_by", sa.String(length=32), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["photo_id"], ["photos.id"], name=op.f("fk_photo_markups_photo_id_photos")
        ),
        sa.PrimaryKeyConstraint("photo_id", name=op.f("pk_photo_markups")),
    )


def downgrade() -> None:
    op.drop_table("photo_markups")
    with op.batch_alter_table("derivatives") as batch:
        batch.drop_column("confirmed_by")
        batch.drop_column("spec_json")
