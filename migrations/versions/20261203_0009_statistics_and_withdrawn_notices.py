"""The agency's desk: withdrawn notices, the name a notice was published under, and the indexes
of the public register and the statistics.

A published public notice whose cause vanishes (a revocation) is `withdrawn` from the register,
with `withdrawn_at`, instead of `cancelled`; like a cancelled task it no longer counts as the live
task of its trigger. `published_name` keeps the name the agency published; notices published
before this revision were published under the registry name, which is copied in.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from points_service.persistence.base import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = "state IN ('pending', 'completed', 'published', 'cancelled', 'withdrawn')"
OLD_STATES = "state IN ('pending', 'completed', 'published', 'cancelled')"
LIVE = sa.text("state NOT IN ('cancelled', 'withdrawn')")
OLD_LIVE = sa.text("state <> 'cancelled'")
PUBLISHED_NOTICE = sa.text("kind = 'public_notice' AND state = 'published'")
SANCTIONED = sa.text("announced_status IN ('suspended', 'terminated')")
TRIGGER = ["practitioner_id", "year", "kind", "violation_id"]


def upgrade() -> None:
    # dropped before the table is copied (SQLite's batch mode), made again with the new states
    op.drop_index("uq_measure_live_trigger", table_name="measure")
    with op.batch_alter_table("measure", schema=None) as batch_op:
        batch_op.add_column(sa.Column("published_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("withdrawn_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(op.f("ck_measure_state"), type_="check")
        batch_op.create_check_constraint(op.f("ck_measure_state"), STATES)
    op.execute(
        "UPDATE measure SET published_name = "
        "(SELECT name FROM practitioner WHERE practitioner.id = measure.practitioner_id) "
        "WHERE state = 'published'"
    )
    op.create_index(
        "uq_measure_live_trigger", "measure", TRIGGER, unique=True, postgresql_where=LIVE, sqlite_where=LIVE
    )
    op.create_index(
        "ix_measure_published_notice",
        "measure",
        ["published_on", "id"],
        postgresql_where=PUBLISHED_NOTICE,
        sqlite_where=PUBLISHED_NOTICE,
    )
    op.create_index(
        "ix_registration_practitioner_span",
        "registration",
        ["practitioner_id", "start_date", "end_date", "institution_id"],
    )
    op.create_index(
        "ix_practitioner_state_sanctioned",
        "practitioner_state",
        ["announced_status", "next_transition_on"],
        postgresql_where=SANCTIONED,
        sqlite_where=SANCTIONED,
    )


def downgrade() -> None:
    op.drop_index("ix_practitioner_state_sanctioned", table_name="practitioner_state")
    op.drop_index("ix_registration_practitioner_span", table_name="registration")
    op.drop_index("ix_measure_published_notice", table_name="measure")
    # before this revision a vanished cause cancelled every task, published notices included
    op.execute(
        "UPDATE measure SET state = 'cancelled', cancelled_at = withdrawn_at WHERE state = 'withdrawn'"
    )
    op.drop_index("uq_measure_live_trigger", table_name="measure")
    with op.batch_alter_table("measure", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_measure_state"), type_="check")
        batch_op.create_check_constraint(op.f("ck_measure_state"), OLD_STATES)
        batch_op.drop_column("withdrawn_at")
        batch_op.drop_column("published_name")
    op.create_index(
        "uq_measure_live_trigger",
        "measure",
        TRIGGER,
        unique=True,
        postgresql_where=OLD_LIVE,
        sqlite_where=OLD_LIVE,
    )
