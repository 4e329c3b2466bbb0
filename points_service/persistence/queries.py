"""select() functions: lookups, locks and the scope filters behind every read, and the reads and
snapshot writes of the person's recompute."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Row, bindparam, exists, literal_column, or_, select
from sqlalchemy.orm import Session

from .models import (
    ApiKey,
    Institution,
    LedgerEntry,
    Measure,
    Practitioner,
    PractitionerState,
    Registration,
    Violation,
)
from .sql import in_values, json_rows, next_id
from .writes import Writes


def institution_by_code(session: Session, code: str) -> Institution | None:
    return session.scalars(select(Institution).where(Institution.code == code)).one_or_none()


def practitioner_by_code(session: Session, code: str) -> Practitioner | None:
    return session.scalars(select(Practitioner).where(Practitioner.code == code)).one_or_none()


def lock_practitioner(session: Session, code: str) -> Practitioner | None:
    """Serialise every write for one person: FOR UPDATE on PostgreSQL (SQLite holds its write lock)."""
    return session.scalars(
        select(Practitioner).where(Practitioner.code == code).with_for_update()
    ).one_or_none()


# the person's ledger and registrations as entities, for the reads that show them (the rules read
# them as rows: _LEDGER_JSON and _REGISTRATIONS_JSON below)
_LEDGER_ENTRIES = (
    select(LedgerEntry).where(LedgerEntry.practitioner_id == bindparam("pid")).order_by(LedgerEntry.id)
)
_REGISTRATIONS = (
    select(Registration, Institution.code)
    .join(Institution, Institution.id == Registration.institution_id)
    .where(Registration.practitioner_id == bindparam("pid"))
    .order_by(Registration.start_date, Registration.id)
)


def ledger_for(session: Session, practitioner_id: int) -> Sequence[LedgerEntry]:
    return session.scalars(_LEDGER_ENTRIES, {"pid": practitioner_id}).all()


def registrations_for(session: Session, practitioner_id: int) -> Sequence[tuple[Registration, str]]:
    return [(r, c) for r, c in session.execute(_REGISTRATIONS, {"pid": practitioner_id})]


class LedgerRow(NamedTuple):
    """A ledger entry as the rules read it."""

    id: int
    kind: str
    violation_id: int | None
    reverses_entry_id: int | None
    repair_id: int | None
    activity: str | None
    effective_on: dt.date
    points: int
    profile_id: str | None


class RegistrationRow(NamedTuple):
    """A registration as the rules read it (rules.Registration takes these fields in this order)."""

    id: int
    institution_code: str
    start_date: dt.date
    end_date: dt.date | None


@dataclass(frozen=True)
class PersonInputs:
    """Everything the rules derive a person's state from: their ledger and their registrations."""

    ledger: list[LedgerRow]
    registrations: list[RegistrationRow]

    def with_entry(self, entry: LedgerRow) -> PersonInputs:
        return PersonInputs([*self.ledger, entry], self.registrations)


# Table columns, not ORM attributes, in the statements every write and every eligibility read
# runs: a statement of plain columns skips the ORM's compile and result handling.
_INSTITUTION = Institution.__table__
_PRACTITIONER = Practitioner.__table__
_STATE = PractitionerState.__table__
_VIOLATION = Violation.__table__
_LEDGER = LedgerEntry.__table__
_REGISTRATION = Registration.__table__
_KEY = ApiKey.__table__

# every request runs it (services.keys.authenticate)
_PRINCIPAL_BY_HASH = (
    select(
        _KEY.c.id,
        _KEY.c.name,
        _KEY.c.role,
        _KEY.c.institution_id,
        _KEY.c.practitioner_id,
        _KEY.c.revoked_at,
        _KEY.c.expires_at,
        _KEY.c.last_used_at,
        _INSTITUTION.c.code.label("institution_code"),
        _PRACTITIONER.c.code.label("practitioner_code"),
    )
    .select_from(
        _KEY.outerjoin(_INSTITUTION, _INSTITUTION.c.id == _KEY.c.institution_id).outerjoin(
            _PRACTITIONER, _PRACTITIONER.c.id == _KEY.c.practitioner_id
        )
    )
    .where(_KEY.c.key_hash == bindparam("key_hash"))
)


def principal_by_hash(session: Session, key_hash: str) -> Row | None:
    """An API key with the codes of its institution and person, by the SHA-256 of its secret."""
    return session.execute(_PRINCIPAL_BY_HASH, {"key_hash": key_hash}).one_or_none()


# both as one JSON value each, so that they come back in the same round trip as whatever else a
# write reads (rows are sorted here: neither database keeps an aggregate's input order for free)
_LEDGER_JSON = select(
    json_rows(
        _LEDGER.c.id,
        _LEDGER.c.kind,
        _LEDGER.c.violation_id,
        _LEDGER.c.reverses_entry_id,
        _LEDGER.c.repair_id,
        _LEDGER.c.activity,
        _LEDGER.c.effective_on,
        _LEDGER.c.points,
        _LEDGER.c.profile_id,
    )
).where(_LEDGER.c.practitioner_id == bindparam("pid"))
_REGISTRATIONS_JSON = (
    select(
        json_rows(
            _REGISTRATION.c.id, _INSTITUTION.c.code, _REGISTRATION.c.start_date, _REGISTRATION.c.end_date
        )
    )
    .select_from(_REGISTRATION.join(_INSTITUTION, _INSTITUTION.c.id == _REGISTRATION.c.institution_id))
    .where(_REGISTRATION.c.practitioner_id == bindparam("pid"))
)


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value[:10]) if value is not None else None


def _inputs(ledger: list[list[Any]], registrations: list[list[Any]]) -> PersonInputs:
    entries = sorted(
        (LedgerRow(i, k, v, r, rep, a, _date(on), pts, prof) for i, k, v, r, rep, a, on, pts, prof in ledger),
        key=lambda e: e.id,
    )
    spans = sorted(
        (RegistrationRow(i, code, _date(start), _date(end)) for i, code, start, end in registrations),
        key=lambda r: (r.start_date, r.id),
    )
    return PersonInputs(entries, spans)  # type: ignore[arg-type]


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
_STATE_BY_CODE = select(*_STATE.c).where(_STATE.c.practitioner_code == bindparam("code"))


def state_by_code(session: Session, code: str) -> Row | None:
    """The person's snapshot row (the columns of practitioner_state), read-only."""
    return session.execute(_STATE_BY_CODE, {"code": code}).one_or_none()


# what a list of eligibility answers needs of each snapshot: rows, not entities, since a batch or a
# roster page reads up to 1000 of them and builds no ORM object of any
_STATE_ROW = (_STATE.c.practitioner_id, _STATE.c.practitioner_code, _STATE.c.state)


def states_by_codes(session: Session, codes: Sequence[str]) -> list[Row]:
    """The snapshot rows of the people with these codes (unknown codes have none), read-only."""
    return session.execute(
        select(*_STATE_ROW).where(in_values(session, _STATE.c.practitioner_code, list(codes)))
    ).all()


def registered_on(at: dt.date) -> tuple[Any, Any]:
    """Registrations in force on `at` (ranges are half-open: [start_date, end_date))."""
    return (
        _REGISTRATION.c.start_date <= at,
        or_(_REGISTRATION.c.end_date.is_(None), _REGISTRATION.c.end_date > at),
    )


def roster_page(
    session: Session, institution_id: int, *, at: dt.date, after: str | None, limit: int
) -> list[Row]:
    """Snapshot rows of the people registered at the institution on `at`, by code, after `after`."""
    query = (
        select(*_STATE_ROW)
        .join(_REGISTRATION, _REGISTRATION.c.practitioner_id == _STATE.c.practitioner_id)
        .where(_REGISTRATION.c.institution_id == institution_id, *registered_on(at))
        .order_by(_STATE.c.practitioner_code)
        .distinct()
        .limit(limit)
    )
    if after is not None:
        query = query.where(_STATE.c.practitioner_code > after)
    return session.execute(query).all()


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
    return select(column).where(_INSTITUTION.c.code == bindparam("institution")).scalar_subquery()


# the person locked, and the institution looked up in the same round trip
_LOCK_FOR_DECISION = (
    select(
        _PRACTITIONER.c.id,
        _PRACTITIONER.c.code,
        _institution(_INSTITUTION.c.id).label("institution_id"),
        _institution(_INSTITUTION.c.region_code).label("region_code"),
    )
    .where(_PRACTITIONER.c.code == bindparam("practitioner"))
    .with_for_update(of=_PRACTITIONER)
)


def lock_for_decision(session: Session, practitioner_code: str, institution_code: str) -> Row | None:
    """(id, code, institution_id, region_code) with the person locked; None when no such person.

    The institution columns are None when there is no such institution.
    """
    return session.execute(
        _LOCK_FOR_DECISION, {"practitioner": practitioner_code, "institution": institution_code}
    ).one_or_none()


def _by_case_ref(column):
    return select(column).where(_VIOLATION.c.case_ref == bindparam("case_ref")).scalar_subquery()


_SNAPSHOT_COLUMNS = (
    _STATE.c.practitioner_id,
    _STATE.c.ledger_version,
    _STATE.c.state,
    _STATE.c.announced_status,
    _STATE.c.next_transition_on,
)


def _person_context(*columns):
    """The person's snapshot and the inputs to derive it again, plus `columns`, in one row."""
    return (
        select(
            *_SNAPSHOT_COLUMNS,
            _LEDGER_JSON.scalar_subquery().label("ledger"),
            _REGISTRATIONS_JSON.scalar_subquery().label("registrations"),
            *columns,
        )
        .select_from(_PRACTITIONER.outerjoin(_STATE, _STATE.c.practitioner_id == _PRACTITIONER.c.id))
        .where(_PRACTITIONER.c.id == bindparam("pid"))
    )


# both read after the person's lock, so they see every write committed before this one
_RECOMPUTE_CONTEXT = _person_context()
# the ids the new decision and its ledger entry will get come with it, so that every row it
# writes can go at once
_DECISION_CONTEXT = _person_context(
    _by_case_ref(_VIOLATION.c.id).label("existing_id"),
    _by_case_ref(_VIOLATION.c.fingerprint).label("existing_fingerprint"),
    next_id(literal_column(_VIOLATION.name)).label("violation_id"),
    next_id(literal_column(_LEDGER.name)).label("ledger_entry_id"),
)


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


@dataclass(frozen=True)
class DecisionContext:
    snapshot: Snapshot
    inputs: PersonInputs
    # the decision already recorded under the case_ref, if any
    existing_id: int | None
    existing_fingerprint: str | None
    # the ids the new decision and its ledger entry get
    violation_id: int
    ledger_entry_id: int


def decision_context(
    session: Session, practitioner_id: int, practitioner_code: str, case_ref: str
) -> DecisionContext:
    """What recording a decision reads, in one statement, once the person is locked."""
    row = session.execute(_DECISION_CONTEXT, {"pid": practitioner_id, "case_ref": case_ref}).one()
    return DecisionContext(
        _snapshot(row, practitioner_id, practitioner_code),
        _inputs(row.ledger, row.registrations),
        row.existing_id,
        row.existing_fingerprint,
        row.violation_id,
        row.ledger_entry_id,
    )


def person_context(
    session: Session, practitioner_id: int, practitioner_code: str
) -> tuple[Snapshot, PersonInputs]:
    """The person's stored snapshot and what to derive it from again, in one statement."""
    row = session.execute(_RECOMPUTE_CONTEXT, {"pid": practitioner_id}).one()
    return _snapshot(row, practitioner_id, practitioner_code), _inputs(row.ledger, row.registrations)


def store_snapshot(session: Session, snapshot: Snapshot, *, now: dt.datetime, writes: Writes) -> None:
    """Write the snapshot back with the use case's other rows.

    An ORM copy of the row that this session holds is expired, so that a read in the same
    transaction after `writes` is sent sees what was written, not what was loaded.
    """
    values = {
        "ledger_version": snapshot.ledger_version,
        "state": snapshot.state,
        "updated_at": now,
        "announced_status": snapshot.announced_status,
        "next_transition_on": snapshot.next_transition_on,
    }
    if snapshot.stored:
        writes.update(_STATE, {"practitioner_id": snapshot.practitioner_id}, values)
        expire_cached(session, PractitionerState, (snapshot.practitioner_id,))
    else:
        writes.insert(
            _STATE,
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


_MEASURE = Measure.__table__
_LIVE_MEASURES = select(
    *(
        _MEASURE.c[name]
        for name in (
            "id",
            "year",
            "kind",
            "violation_id",
            "institution_id",
            "triggered_on",
            "state",
            "completed_on",
            "note",
        )
    )
).where(_MEASURE.c.practitioner_id == bindparam("pid"), _MEASURE.c.state != "cancelled")


def live_measures(session: Session, practitioner_id: int) -> Sequence[Row]:
    """The person's measure tasks that are not cancelled, as rows (the columns measure views read)."""
    return session.execute(_LIVE_MEASURES, {"pid": practitioner_id}).all()


def keys_by_id(session: Session, key_ids: Iterable[int]) -> dict[int, Row]:
    """(id, role, institution_id, practitioner_id) of API keys, by id: who recorded what."""
    ids = set(key_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(_KEY.c.id, _KEY.c.role, _KEY.c.institution_id, _KEY.c.practitioner_id).where(
            _KEY.c.id.in_(ids)
        )
    )
    return {row.id: row for row in rows}
