"""A measure is unique per trigger only while live: a cancelled task stays beside a new one.

A measure cancelled because its cause went (a revoked or amended decision) can be wanted again
when another appeal brings the cause back; the full unique constraint refused that with 409.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("state <> 'cancelled'")


def upgrade() -> None:
    with op.batch_alter_table("measure", schema=None) as batch_op:
        batch_op.drop_constraint("uq_measure_trigger", type_="unique")
    op.create_index(
        "uq_measure_live_trigger",
        "measure",
        ["practitioner_id", "year", "kind", "violation_id"],
        unique=True,
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )


def downgrade() -> None:
    op.drop_index("uq_measure_live_trigger", table_name="measure")
    with op.batch_alter_table("measure", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            "uq_measure_trigger", ["practitioner_id", "year", "kind", "violation_id"]
        )
