"""tracking sites

Body sites become the closed vocabulary of skinvault.tracking.sites (code, label,
laterality, SNOMED CT body structure); existing free-text sites are mapped onto it
(``from_legacy``: "left-arm" -> "arm-left", unknown text -> "other", the old text kept
in the label so nothing is lost). Two old sites of one patient that map to the same
code are merged (their photos point to one row). Photos get where their capture
date came from and sealed capture details; measurements get their own table.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 21:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _map_sites() -> None:
    from skinvault.tracking import sites  # noqa: PLC0415  (pure, no I/O)

    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, patient_id, code, label FROM body_sites")).fetchall()
    seen: dict[tuple[str, str], str] = {}
    for site_id, patient_id, code, label in rows:
        site = sites.from_legacy(code)
        key = (patient_id, site.code)
        if key in seen:
            conn.execute(
                sa.text("UPDATE photos SET site_id = :keep WHERE site_id = :old"),
                {"keep": seen[key], "old": site_id},
            )
            conn.execute(sa.text("DELETE FROM body_sites WHERE id = :old"), {"old": site_id})
            continue
        seen[key] = site_id
        new_label = site.label
        if site.code == "other" and code and code != "other":
            new_label = f"Other: {label or code}"[:200]
        conn.execute(
            sa.text(
                "UPDATE body_sites SET code = :code, label = :label, laterality = :lat,"
                " snomed_code = :sct WHERE id = :id"
            ),
            {"code": site.code, "label": new_label, "lat": site.laterality,
             "sct": site.snomed_code, "id": site_id},
        )  # fmt: skip


def upgrade() -> None:
    with op.batch_alter_table("body_sites", schema=None) as batch_op:
        batch_op.add_column(sa.Column("laterality", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("snomed_code", sa.String(length=18), nullable=True))
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("taken_on_source", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("details_enc", sa.LargeBinary(), nullable=True))
    op.create_table(
        "measurements",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("photo_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=10), nullable=False),
        sa.Column("method", sa.String(length=60), nullable=False),
        sa.Column("version", sa.String(length=20), nullable=False),
        sa.Column("region_json", sa.Text(), nullable=True),
        sa.Column("details_json", sa.Text(), nullable=False),
        sa.Column("measured_at", sa.DateTime(), nullable=False),
        sa.Column("measured_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["photo_id"], ["photos.id"], name=op.f("fk_measurements_photo_id_photos")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_measurements")),
    )
    with op.batch_alter_table("measurements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_measurements_photo_id"), ["photo_id"], unique=False)
    _map_sites()


def downgrade() -> None:
    with op.batch_alter_table("measurements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_measurements_photo_id"))
    op.drop_table("measurements")
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.drop_column("details_enc")
        batch_op.drop_column("taken_on_source")
    with op.batch_alter_table("body_sites", schema=None) as batch_op:
        batch_op.drop_column("snomed_code")
        batch_op.drop_column("laterality")
