"""ORM classes: tables, named constraints and CHECKs; no behaviour.

The ledger (`ledger_entry`), the decisions (`violation`) and the audit trail are insert-only; the
migrations add triggers that refuse UPDATE and DELETE on them.

Relationships load nothing by themselves (`lazy="raise"`): a query says what it needs (joinedload,
selectinload), so a page of a hundred rows never turns into a hundred and one queries unseen.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..rules.policy import CATEGORIES, INSTITUTION_KINDS, MEASURE_KINDS, REPAIR_ACTIVITIES, RESPONSIBILITIES
from .base import Base, JSONType

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identities.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


ROLES = ("admin", "inspector", "reviewer", "hr_system", "practitioner")
LEDGER_KINDS = ("decision", "reversal", "repair")
MEASURE_STATES = ("pending", "completed", "published", "cancelled", "withdrawn")
# a task whose cause vanished: cancelled, or withdrawn from the public register once published
ENDED_MEASURE_STATES = ("cancelled", "withdrawn")
LIVE_MEASURE = "state NOT IN ('cancelled', 'withdrawn')"
PUBLISHED_NOTICE = "kind = 'public_notice' AND state = 'published'"
SANCTIONED = "announced_status IN ('suspended', 'terminated')"
REPAIR_STATUSES = ("submitted", "institution_approved", "approved", "rejected")
APPEAL_STATUSES = ("open", "upheld", "amended", "revoked")
DELIVERY_STATUSES = ("pending", "delivered", "failed", "cancelled")


class Institution(Base):
    __tablename__ = "institution"
    __table_args__ = (
        CheckConstraint(_in("kind", INSTITUTION_KINDS), name="kind"),
        CheckConstraint("length(region_code) = 6", name="region_code_length"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    region_code: Mapped[str] = mapped_column(String(6))
    created_at: Mapped[dt.datetime]


class Practitioner(Base):
    __tablename__ = "practitioner"
    __table_args__ = (CheckConstraint(_in("category", CATEGORIES), name="category"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32))
    # docs/rules.md rule 2: AES-GCM ciphertext, an HMAC blind index for lookup, the mask computed at write
    national_id_cipher: Mapped[bytes] = mapped_column(LargeBinary)
    national_id_index: Mapped[str] = mapped_column(String(64), unique=True)
    national_id_masked: Mapped[str] = mapped_column(String(18))
    created_at: Mapped[dt.datetime]

    registrations: Mapped[list[Registration]] = relationship(
        lazy="raise", back_populates="practitioner", order_by="(Registration.start_date, Registration.id)"
    )
    ledger: Mapped[list[LedgerEntry]] = relationship(lazy="raise", order_by="LedgerEntry.id")
    snapshot: Mapped[PractitionerState | None] = relationship(lazy="raise")
    measures: Mapped[list[Measure]] = relationship(lazy="raise", order_by="Measure.id")


class Registration(Base):
    """A registration (登记备案) at one institution; `[start_date, end_date)`, history kept."""

    __tablename__ = "registration"
    __table_args__ = (
        CheckConstraint("end_date IS NULL OR end_date > start_date", name="end_after_start"),
        Index("ix_registration_institution_practitioner", "institution_id", "practitioner_id"),
        # where a person was registered in a period, answered from the index alone (the
        # statistics' people filter probes it once per person counted)
        Index(
            "ix_registration_practitioner_span", "practitioner_id", "start_date", "end_date", "institution_id"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    practitioner_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    end_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    ended_at: Mapped[dt.datetime | None]
    ended_by: Mapped[str | None] = mapped_column(String(200))

    practitioner: Mapped[Practitioner] = relationship(lazy="raise", back_populates="registrations")
    institution: Mapped[Institution] = relationship(lazy="raise")


class Violation(Base):
    """A scoring decision as the inspector posted it. Its points live in the ledger."""

    __tablename__ = "violation"
    __table_args__ = (
        CheckConstraint("points BETWEEN 1 AND 12", name="points_range"),
        CheckConstraint("occurred_on <= decided_on", name="occurred_before_decided"),
        CheckConstraint(_in("responsibility", RESPONSIBILITIES), name="responsibility"),
        CheckConstraint(
            "adjustment IS NULL OR " + _in("adjustment", ("mitigated", "aggravated")), name="adjustment"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_ref: Mapped[str] = mapped_column(String(100), unique=True)
    practitioner_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    behaviour_code: Mapped[str] = mapped_column(String(16))
    responsibility: Mapped[str] = mapped_column(String(16))
    adjustment: Mapped[str | None] = mapped_column(String(16))
    adjustment_reason: Mapped[str | None] = mapped_column(Text)
    points: Mapped[int] = mapped_column(Integer)
    occurred_on: Mapped[dt.date] = mapped_column(Date)
    decided_on: Mapped[dt.date] = mapped_column(Date)
    score_year: Mapped[int] = mapped_column(Integer)
    profile_id: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    evidence_refs: Mapped[list[str]] = mapped_column(JSONType)
    # SHA-256 of the canonical request content: a repeated case_ref is a replay only if equal
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    created_by: Mapped[str] = mapped_column(String(200))

    practitioner: Mapped[Practitioner] = relationship(lazy="raise")
    institution: Mapped[Institution] = relationship(lazy="raise")
    entries: Mapped[list[LedgerEntry]] = relationship(
        lazy="raise", back_populates="violation", order_by="LedgerEntry.id"
    )


class LedgerEntry(Base):
    """The append-only points ledger (docs/rules.md rule 24): corrections are new entries."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        CheckConstraint(_in("kind", LEDGER_KINDS), name="kind"),
        CheckConstraint(
            "(kind = 'decision' AND violation_id IS NOT NULL AND points > 0)"
            " OR (kind = 'reversal' AND reverses_entry_id IS NOT NULL)"
            " OR (kind = 'repair' AND repair_id IS NOT NULL AND activity IS NOT NULL)",
            name="kind_fields",
        ),
        Index("ix_ledger_entry_practitioner_year", "practitioner_id", "score_year"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    practitioner_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"))
    kind: Mapped[str] = mapped_column(String(16))
    score_year: Mapped[int] = mapped_column(Integer)
    effective_on: Mapped[dt.date] = mapped_column(Date)
    points: Mapped[int] = mapped_column(Integer)
    violation_id: Mapped[int | None] = mapped_column(ForeignKey("violation.id"), index=True)
    # one reversal per entry: two racing reviewers cannot reverse twice
    reverses_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entry.id"), unique=True)
    # one credit per repair application (the repair workflow arrives with the case lifecycle)
    repair_id: Mapped[int | None] = mapped_column(BigId, unique=True)
    activity: Mapped[str | None] = mapped_column(String(32))
    profile_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime]
    recorded_by: Mapped[str] = mapped_column(String(200))

    violation: Mapped[Violation | None] = relationship(lazy="raise", back_populates="entries")


class PractitionerState(Base):
    """The materialised derived state: a cache of rules.derive_state, rewritten under the person's lock.

    Keyed by practitioner code so an eligibility read is one indexed lookup.
    """

    __tablename__ = "practitioner_state"

    practitioner_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"), primary_key=True)
    practitioner_code: Mapped[str] = mapped_column(String(64), unique=True)
    ledger_version: Mapped[int] = mapped_column(Integer)
    state: Mapped[dict[str, Any]] = mapped_column(JSONType)
    updated_at: Mapped[dt.datetime]
    # what the change feed last said of the person's status, and the next day it may change by
    # itself (a suspension starts or ends, a bar expires): the transitions sweep reads this index
    announced_status: Mapped[str | None] = mapped_column(String(16))
    next_transition_on: Mapped[dt.date | None] = mapped_column(Date, index=True)

    __table_args__ = (
        # the few people suspended or terminated, for the statistics and the metrics: a partial index
        # that a snapshot write touches only while the person is sanctioned
        Index(
            "ix_practitioner_state_sanctioned",
            "announced_status",
            "next_transition_on",
            postgresql_where=text(SANCTIONED),
            sqlite_where=text(SANCTIONED),
        ),
    )


class Measure(Base):
    """A talk or notice to carry out (docs/rules.md rule 13); cancelled (a published notice:
    withdrawn), never deleted, when its cause goes."""

    __tablename__ = "measure"
    __table_args__ = (
        CheckConstraint(_in("kind", MEASURE_KINDS), name="kind"),
        CheckConstraint(_in("state", MEASURE_STATES), name="state"),
        # one live task per trigger; an ended one stays beside a new one when its cause comes back
        Index(
            "uq_measure_live_trigger",
            "practitioner_id",
            "year",
            "kind",
            "violation_id",
            unique=True,
            postgresql_where=text(LIVE_MEASURE),
            sqlite_where=text(LIVE_MEASURE),
        ),
        Index("ix_measure_institution_state", "institution_id", "state"),
        # the public register (GET /v1/notices), newest first
        Index(
            "ix_measure_published_notice",
            "published_on",
            "id",
            postgresql_where=text(PUBLISHED_NOTICE),
            sqlite_where=text(PUBLISHED_NOTICE),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    practitioner_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    violation_id: Mapped[int] = mapped_column(ForeignKey("violation.id"))
    year: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    triggered_on: Mapped[dt.date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16))
    completed_on: Mapped[dt.date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    completed_at: Mapped[dt.datetime | None]
    completed_by: Mapped[str | None] = mapped_column(String(200))
    published_on: Mapped[dt.date | None] = mapped_column(Date)
    # the name the agency published the notice under (docs/decisions.md), kept as published
    published_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime]
    cancelled_at: Mapped[dt.datetime | None]
    withdrawn_at: Mapped[dt.datetime | None]

    practitioner: Mapped[Practitioner] = relationship(lazy="raise", back_populates="measures")
    institution: Mapped[Institution] = relationship(lazy="raise")


class RepairApplication(Base):
    """An application to repair points (docs/rules.md rule 19): institution review, then agency review.

    `version` is SQLAlchemy's version counter: a review carrying a stale version, or losing a race
    at flush, is a conflict; the ledger's UNIQUE(repair_id) makes a double credit impossible.
    """

    __tablename__ = "repair_application"
    __table_args__ = (
        CheckConstraint(_in("activity", REPAIR_ACTIVITIES), name="activity"),
        CheckConstraint(_in("status", REPAIR_STATUSES), name="status"),
        Index("ix_repair_application_practitioner_status", "practitioner_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    practitioner_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"))
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    activity: Mapped[str] = mapped_column(String(32))
    completed_on: Mapped[dt.date] = mapped_column(Date)
    evidence_ref: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    submitted_at: Mapped[dt.datetime]
    submitted_by: Mapped[str] = mapped_column(String(200))
    institution_comment: Mapped[str | None] = mapped_column(Text)
    institution_reviewed_at: Mapped[dt.datetime | None]
    institution_reviewed_by: Mapped[str | None] = mapped_column(String(200))
    agency_comment: Mapped[str | None] = mapped_column(Text)
    agency_reviewed_on: Mapped[dt.date | None] = mapped_column(Date)
    agency_reviewed_at: Mapped[dt.datetime | None]
    agency_reviewed_by: Mapped[str | None] = mapped_column(String(200))

    practitioner: Mapped[Practitioner] = relationship(lazy="raise")
    institution: Mapped[Institution] = relationship(lazy="raise")

    __mapper_args__ = {"version_id_col": version}


class Appeal(Base):
    """An appeal (申诉) against one decision (docs/rules.md rule 23); one per decision, decided once."""

    __tablename__ = "appeal"
    __table_args__ = (
        CheckConstraint(_in("status", APPEAL_STATUSES), name="status"),
        CheckConstraint("outcome_points IS NULL OR outcome_points BETWEEN 1 AND 12", name="outcome_points"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    violation_id: Mapped[int] = mapped_column(ForeignKey("violation.id"), unique=True)
    practitioner_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    filed_on: Mapped[dt.date] = mapped_column(Date)
    deadline: Mapped[dt.date] = mapped_column(Date)
    deadline_estimated: Mapped[bool]
    filed_at: Mapped[dt.datetime]
    filed_by: Mapped[str] = mapped_column(String(200))
    outcome_points: Mapped[int | None] = mapped_column(Integer)
    outcome_reason: Mapped[str | None] = mapped_column(Text)
    decided_on: Mapped[dt.date | None] = mapped_column(Date)
    decided_at: Mapped[dt.datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(200))
    # the ledger entries the outcome wrote (the ledger itself is never altered to point back)
    reversal_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entry.id"))
    amended_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entry.id"))
    version: Mapped[int] = mapped_column(Integer)

    violation: Mapped[Violation] = relationship(lazy="raise")
    practitioner: Mapped[Practitioner] = relationship(lazy="raise")

    __mapper_args__ = {"version_id_col": version}


class ApiKey(Base):
    """API keys: only the SHA-256 of the secret is stored, with a visible prefix to identify it."""

    __tablename__ = "api_key"
    __table_args__ = (
        CheckConstraint(_in("role", ROLES), name="role"),
        CheckConstraint(
            "role <> 'hr_system' OR institution_id IS NOT NULL", name="hr_system_has_institution"
        ),
        CheckConstraint(
            "role <> 'practitioner' OR practitioner_id IS NOT NULL", name="practitioner_has_person"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioner.id"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]


class IdempotencyKey(Base):
    """Idempotency-Key claims: claimed in the same transaction as the write they protect."""

    __tablename__ = "idempotency_key"

    client_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column(JSONType)
    location: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class AuditEvent(Base):
    """Who did what, when: written in the same transaction as the change; insert-only."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(200), index=True)
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(100))
    request_id: Mapped[str | None] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType)


APPEND_ONLY_TABLES = ("ledger_entry", "violation", "audit_event")


class OutboxEvent(Base):
    """The change feed: one row per change that matters to a client, written with the change.

    `id` orders the feed (the cursor); `event_id` is the stable CloudEvents/webhook id receivers
    de-duplicate on; `dedupe_key` makes a time-based sweep's announcement happen once.
    """

    __tablename__ = "outbox_event"
    __table_args__ = (Index("ix_outbox_event_position", "txid", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # PostgreSQL: the writing transaction's id. Ids come from a sequence, not in commit order, so
    # readers order by (txid, id) and read only transactions older than every running one.
    # SQLite serialises writers, so there id order is commit order and txid stays NULL.
    txid: Mapped[int | None] = mapped_column(BigInteger)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str | None] = mapped_column(String(200))
    practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioner.id"), index=True)
    # where the change arose, for changes an HR system may see only at its own institution
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    occurred_at: Mapped[dt.datetime]


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscription"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    owner_key_id: Mapped[int] = mapped_column(ForeignKey("api_key.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list[str]] = mapped_column(JSONType)
    # AES-GCM under the PII keys: the signing secret must be usable, so it cannot be a hash
    secret_cipher: Mapped[bytes] = mapped_column(LargeBinary)
    # the last outbox position (txid, id) fanned out into deliveries for this subscription
    cursor: Mapped[int] = mapped_column(BigInteger)
    cursor_txid: Mapped[int] = mapped_column(BigInteger, server_default="0")
    created_at: Mapped[dt.datetime]
    deleted_at: Mapped[dt.datetime | None]
    # the key that created it was revoked or expired: nothing more is sent (reason: key_revoked,
    # key_expired); the subscription and its delivery log stay readable
    disabled_at: Mapped[dt.datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(32))


class WebhookDelivery(Base):
    """One event for one subscription: delivered at least once, retried with backoff for a day."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", name="uq_webhook_delivery_subscription_event"),
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status"),
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscription.id"))
    event_id: Mapped[int] = mapped_column(ForeignKey("outbox_event.id"))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime]
    delivered_at: Mapped[dt.datetime | None]

    event: Mapped[OutboxEvent] = relationship(lazy="raise")
    attempt_log: Mapped[list[WebhookAttempt]] = relationship(lazy="raise", order_by="WebhookAttempt.id")


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempt"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_delivery.id"), index=True)
    attempted_at: Mapped[dt.datetime]
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[int] = mapped_column(Integer)


class JobRun(Base):
    """Every scheduled or manual sweep: when, for which day, what it did."""

    __tablename__ = "job_run"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job: Mapped[str] = mapped_column(String(64), index=True)
    today: Mapped[dt.date] = mapped_column(Date)
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime]
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType)


class ServiceSetting(Base):
    """What this deployment must remember across restarts; today the fingerprint of the key the
    national-ID blind index was built with (`services.pii_rotation`), so that a changed
    POINTS_INDEX_KEY is refused instead of silently missing duplicates."""

    __tablename__ = "service_setting"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime]
