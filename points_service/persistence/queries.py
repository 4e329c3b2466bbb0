"""select() functions: lookups, locks and the scope filters behind every read."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Row, bindparam, exists, select
from sqlalchemy.orm import Session

from .models import Institution, LedgerEntry, Practitioner, PractitionerState, Registration, Violation


def institution_by_code(session: Session, code: str) -> Institution | None:
    return session.scalars(select(Institution).where(Institution.code == code)).one_or_none()


def practitioner_by_code(session: Session, code: str) -> Practitioner | None:
    return session.scalars(select(Practitioner).where(Practitioner.code == code)).one_or_none()


def lock_practitioner(session: Session, code: str) -> Practitioner | None:
    """Serialise every write for one person: FOR UPDATE on PostgreSQL (SQLite holds its write lock)."""
    return session.scalars(
        select(Practitioner).where(Practitioner.code == code).with_for_update()
    ).one_or_none()


# One shape for the person's ledger and for their registrations, built once: every write replays
# both. The row variants (plain columns, no ORM entities) are what the rules read.
def _ledger(*columns):
    return select(*columns).where(LedgerEntry.practitioner_id == bindparam("pid")).order_by(LedgerEntry.id)


def _registrations(*columns):
    return (
        select(*columns)
        .join(Institution, Institution.id == Registration.institution_id)
        .where(Registration.practitioner_id == bindparam("pid"))
        .order_by(Registration.start_date, Registration.id)
    )


_LEDGER_ENTRIES = _ledger(LedgerEntry)
_LEDGER_ROWS = _ledger(
    LedgerEntry.id,
    LedgerEntry.kind,
    LedgerEntry.violation_id,
    LedgerEntry.reverses_entry_id,
    LedgerEntry.repair_id,
    LedgerEntry.activity,
    LedgerEntry.effective_on,
    LedgerEntry.points,
    LedgerEntry.profile_id,
)
_REGISTRATIONS = _registrations(Registration, Institution.code)
_REGISTRATION_SPANS = _registrations(
    Registration.id, Institution.code, Registration.start_date, Registration.end_date
)


def ledger_for(session: Session, practitioner_id: int) -> Sequence[LedgerEntry]:
    return session.scalars(_LEDGER_ENTRIES, {"pid": practitioner_id}).all()


def ledger_rows(session: Session, practitioner_id: int) -> Sequence[Row]:
    """(id, kind, violation_id, reverses_entry_id, repair_id, activity, effective_on, points, profile_id)"""
    return session.execute(_LEDGER_ROWS, {"pid": practitioner_id}).all()


def registrations_for(session: Session, practitioner_id: int) -> Sequence[tuple[Registration, str]]:
    return [(r, c) for r, c in session.execute(_REGISTRATIONS, {"pid": practitioner_id})]


def registration_spans(session: Session, practitioner_id: int) -> Sequence[Row]:
    """(id, institution_code, start_date, end_date), as rules.Registration takes them"""
    return session.execute(_REGISTRATION_SPANS, {"pid": practitioner_id}).all()


def violations_for(session: Session, practitioner_id: int) -> Sequence[tuple[Violation, str]]:
    rows = session.execute(
        select(Violation, Institution.code)
        .join(Institution, Institution.id == Violation.institution_id)
        .where(Violation.practitioner_id == practitioner_id)
        .order_by(Violation.id)
    ).all()
    return [(v, c) for v, c in rows]


# built once: the eligibility read runs this on every request, and building a select (and its
# cache key) costs more than the lookup itself
_STATE_BY_CODE = select(PractitionerState).where(PractitionerState.practitioner_code == bindparam("code"))


def state_by_code(session: Session, code: str) -> PractitionerState | None:
    return session.scalars(_STATE_BY_CODE, {"code": code}).one_or_none()


def is_registered_at(session: Session, practitioner_id: int, institution_id: int) -> bool:
    """Has the person ever been registered at the institution (an HR system's staff, past or present)."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    Registration.practitioner_id == practitioner_id,
                    Registration.institution_id == institution_id,
                )
            )
        )
    )
