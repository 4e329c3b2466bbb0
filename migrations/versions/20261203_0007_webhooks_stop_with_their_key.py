"""Webhook subscriptions stop with the key that created them; cancelled deliveries.

A subscription whose creator's key is revoked or expires is disabled (`disabled_at`, with the
reason), and its pending deliveries end as `cancelled`, as do a deleted subscription's.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from points_service.persistence.base import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_subscription", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disabled_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("disabled_reason", sa.String(length=32), nullable=True))
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_webhook_delivery_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_webhook_delivery_status"), "status IN ('pending', 'delivered', 'failed', 'cancelled')"
        )
    # what a deleted subscription left pending was never going to be sent
    op.execute(
        "UPDATE webhook_delivery SET status = 'cancelled' WHERE status = 'pending' AND subscription_id IN "
        "(SELECT id FROM webhook_subscription WHERE deleted_at IS NOT NULL)"
    )


def downgrade() -> None:
    op.execute("UPDATE webhook_delivery SET status = 'failed' WHERE status = 'cancelled'")
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_webhook_delivery_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_webhook_delivery_status"), "status IN ('pending', 'delivered', 'failed')"
        )
    with op.batch_alter_table("webhook_subscription", schema=None) as batch_op:
        batch_op.drop_column("disabled_reason")
        batch_op.drop_column("disabled_at")
