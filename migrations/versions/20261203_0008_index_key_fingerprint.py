"""service_setting: what the deployment remembers, first the fingerprint of the national-ID index key.

A start with another POINTS_INDEX_KEY than the one the stored blind indexes were made with would
stop finding duplicate national IDs without a word; the recorded fingerprint lets every start-up
refuse it. The fingerprint is written at the first start or use, when the key is known.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import points_service.persistence.base

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "service_setting",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("updated_at", points_service.persistence.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_service_setting")),
    )


def downgrade() -> None:
    op.drop_table("service_setting")
