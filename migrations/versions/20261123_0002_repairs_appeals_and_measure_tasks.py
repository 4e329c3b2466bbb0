"""Repair applications, appeals, and measures as tasks (docs/rules.md §4, §5, rule 13).

Nothing here alters the append-only ledger: appeals point at the entries their outcome wrote.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import points_service.persistence.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "repair_application",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("practitioner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("institution_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("activity", sa.String(length=32), nullable=False),
        sa.Column("completed_on", sa.Date(), nullable=False),
        sa.Column("evidence_ref", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("submitted_at", points_service.persistence.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("submitted_by", sa.String(length=200), nullable=False),
        sa.Column("institution_comment", sa.Text(), nullable=True),
        sa.Column(
            "institution_reviewed_at",
            points_service.persistence.base.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("institution_reviewed_by", sa.String(length=200), nullable=True),
        sa.Column("agency_comment", sa.Text(), nullable=True),
        sa.Column("agency_reviewed_on", sa.Date(), nullable=True),
        sa.Column(
            "agency_reviewed_at", points_service.persistence.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("agency_reviewed_by", sa.String(length=200), nullable=True),
        sa.CheckConstraint(
            "activity IN ('online_study', 'offline_training', 'policy_promotion', 'inspection_participation')",
            name=op.f("ck_repair_application_activity"),
        ),
        sa.CheckConstraint(
            "status IN ('submitted', 'institution_approved', 'approved', 'rejected')",
            name=op.f("ck_repair_application_status"),
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institution.id"],
            name=op.f("fk_repair_application_institution_id_institution"),
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_id"],
            ["practitioner.id"],
            name=op.f("fk_repair_application_practitioner_id_practitioner"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repair_application")),
    )
    with op.batch_alter_table("repair_application", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_repair_application_institution_id"), ["institution_id"], unique=False
        )
        batch_op.create_index(
            "ix_repair_application_practitioner_status", ["practitioner_id", "status"], unique=False
        )

    op.create_table(
        "appeal",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("violation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("practitioner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("filed_on", sa.Date(), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=False),
        sa.Column("deadline_estimated", sa.Boolean(), nullable=False),
        sa.Column("filed_at", points_service.persistence.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("filed_by", sa.String(length=200), nullable=False),
        sa.Column("outcome_points", sa.Integer(), nullable=True),
        sa.Column("outcome_reason", sa.Text(), nullable=True),
        sa.Column("decided_on", sa.Date(), nullable=True),
        sa.Column("decided_at", points_service.persistence.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("reversal_entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("amended_entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'upheld', 'amended', 'revoked')", name=op.f("ck_appeal_status")
        ),
        sa.CheckConstraint(
            "outcome_points IS NULL OR outcome_points BETWEEN 1 AND 12", name=op.f("ck_appeal_outcome_points")
        ),
        sa.ForeignKeyConstraint(
            ["amended_entry_id"], ["ledger_entry.id"], name=op.f("fk_appeal_amended_entry_id_ledger_entry")
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_id"], ["practitioner.id"], name=op.f("fk_appeal_practitioner_id_practitioner")
        ),
        sa.ForeignKeyConstraint(
            ["reversal_entry_id"], ["ledger_entry.id"], name=op.f("fk_appeal_reversal_entry_id_ledger_entry")
        ),
        sa.ForeignKeyConstraint(
            ["violation_id"], ["violation.id"], name=op.f("fk_appeal_violation_id_violation")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appeal")),
        sa.UniqueConstraint("violation_id", name=op.f("uq_appeal_violation_id")),
    )
    with op.batch_alter_table("appeal", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_appeal_practitioner_id"), ["practitioner_id"], unique=False)

    with op.batch_alter_table("measure", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "completed_at", points_service.persistence.base.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(sa.Column("completed_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("published_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("measure", schema=None) as batch_op:
        batch_op.drop_column("published_on")
        batch_op.drop_column("completed_by")
        batch_op.drop_column("completed_at")

    with op.batch_alter_table("appeal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_appeal_practitioner_id"))

    op.drop_table("appeal")
    with op.batch_alter_table("repair_application", schema=None) as batch_op:
        batch_op.drop_index("ix_repair_application_practitioner_status")
        batch_op.drop_index(batch_op.f("ix_repair_application_institution_id"))

    op.drop_table("repair_application")
