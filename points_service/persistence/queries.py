"""select() functions: lookups, locks and the scope filters behind every read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, bindparam, exists, select, update
from sqlalchemy.orm import Session

from .models import (
    Institution,
    LedgerEntry,
    Measure,
    Practitioner,
    PractitionerState,
    Registration,
    Violation,
)


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


# -- the decision write (services.violations.record_violation): few statements, each built once --


def _institution(column):
    return select(column).where(Institution.code == bindparam("institution")).scalar_subquery()


# the person locked, and the institution looked up in the same round trip
_LOCK_FOR_DECISION = (
    select(
        Practitioner.id,
        Practitioner.code,
        _institution(Institution.id).label("institution_id"),
        _institution(Institution.region_code).label("region_code"),
    )
    .where(Practitioner.code == bindparam("practitioner"))
    .with_for_update(of=Practitioner)
)


def lock_for_decision(session: Session, practitioner_code: str, institution_code: str) -> Row | None:
    """(id, code, institution_id, region_code) with the person locked; None when no such person.

    The institution columns are None when there is no such institution.
    """
    return session.execute(
        _LOCK_FOR_DECISION, {"practitioner": practitioner_code, "institution": institution_code}
    ).one_or_none()


def _by_case_ref(column):
    return select(column).where(Violation.case_ref == bindparam("case_ref")).scalar_subquery()


_SNAPSHOT_COLUMNS = (
    PractitionerState.practitioner_id,
    PractitionerState.ledger_version,
    PractitionerState.state,
    PractitionerState.announced_status,
    PractitionerState.next_transition_on,
)
# read after the lock, so it sees every write committed before this one
_DECISION_CONTEXT = (
    select(
        *_SNAPSHOT_COLUMNS,
        _by_case_ref(Violation.id).label("existing_id"),
        _by_case_ref(Violation.fingerprint).label("existing_fingerprint"),
    )
    .select_from(Practitioner)
    .outerjoin(PractitionerState, PractitionerState.practitioner_id == Practitioner.id)
    .where(Practitioner.id == bindparam("pid"))
)
_SNAPSHOT = select(*_SNAPSHOT_COLUMNS).where(PractitionerState.practitioner_id == bindparam("pid"))


@dataclass
class Snapshot:
    """The person's stored derived state, as a write reads and rewrites it (no ORM object)."""

    practitioner_id: int
    practitioner_code: str
    stored: bool  # False: the person has no row yet
    ledger_version: int = 0
    state: dict[str, Any] | None = None
    announced_status: str | None = "not_registered"
    next_transition_on: dt.date | None = None


def _snapshot(row: Row | None, practitioner_id: int, practitioner_code: str) -> Snapshot:
    if row is None or row.practitioner_id is None:
        return Snapshot(practitioner_id, practitioner_code, stored=False)
    return Snapshot(
        practitioner_id,
        practitioner_code,
        stored=True,
        ledger_version=row.ledger_version,
        state=row.state,
        announced_status=row.announced_status,
        next_transition_on=row.next_transition_on,
    )


def decision_context(
    session: Session, practitioner_id: int, practitioner_code: str, case_ref: str
) -> tuple[Snapshot, int | None, str | None]:
    """The person's snapshot and the decision already recorded under `case_ref` (id, fingerprint)."""
    row = session.execute(_DECISION_CONTEXT, {"pid": practitioner_id, "case_ref": case_ref}).one()
    return _snapshot(row, practitioner_id, practitioner_code), row.existing_id, row.existing_fingerprint


def snapshot_of(session: Session, practitioner_id: int, practitioner_code: str) -> Snapshot:
    row = session.execute(_SNAPSHOT, {"pid": practitioner_id}).one_or_none()
    return _snapshot(row, practitioner_id, practitioner_code)


_STATE = PractitionerState.__table__
_UPDATE_SNAPSHOT = (
    update(_STATE)
    .where(_STATE.c.practitioner_id == bindparam("pid"))
    .values(
        ledger_version=bindparam("ledger_version"),
        state=bindparam("state"),
        updated_at=bindparam("updated_at"),
        announced_status=bindparam("announced_status"),
        next_transition_on=bindparam("next_transition_on"),
    )
)
_INSERT_SNAPSHOT = _STATE.insert()


def store_snapshot(session: Session, snapshot: Snapshot, *, now: dt.datetime) -> None:
    """Write the snapshot back with one table statement.

    An ORM copy of the row that this session holds is expired, so a later read in the same
    transaction sees what was written, not what was loaded.
    """
    values = {
        "ledger_version": snapshot.ledger_version,
        "state": snapshot.state,
        "updated_at": now,
        "announced_status": snapshot.announced_status,
        "next_transition_on": snapshot.next_transition_on,
    }
    if snapshot.stored:
        session.execute(_UPDATE_SNAPSHOT, {"pid": snapshot.practitioner_id, **values})
        expire_cached(session, PractitionerState, (snapshot.practitioner_id,))
    else:
        session.execute(
            _INSERT_SNAPSHOT,
            {
                "practitioner_id": snapshot.practitioner_id,
                "practitioner_code": snapshot.practitioner_code,
                **values,
            },
        )
        snapshot.stored = True


def expire_cached(session: Session, model: type, ids: Iterable[int]) -> None:
    """Expire the ORM copies this session holds of rows just changed by a table statement."""
    for ident in ids:
        cached = session.identity_map.get(session.identity_key(model, ident))  # type: ignore[arg-type]
        if cached is not None:
            session.expire(cached)


_MEASURE_COLUMNS = (
    Measure.id,
    Measure.year,
    Measure.kind,
    Measure.violation_id,
    Measure.institution_id,
    Measure.triggered_on,
    Measure.state,
    Measure.completed_on,
    Measure.note,
)
_LIVE_MEASURES = select(*_MEASURE_COLUMNS).where(
    Measure.practitioner_id == bindparam("pid"), Measure.state != "cancelled"
)


def live_measures(session: Session, practitioner_id: int) -> Sequence[Row]:
    """The person's measure tasks that are not cancelled, as rows (the columns measure views read)."""
    return session.execute(_LIVE_MEASURES, {"pid": practitioner_id}).all()
