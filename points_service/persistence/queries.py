"""select() functions: lookups, locks and the scope filters behind every read, and the reads and
snapshot writes of the person's recompute."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import Row, Text, bindparam, cast, exists, or_, select
from sqlalchemy.orm import Session, joinedload

from .engine import Reader, rows_on
from .models import (
    ENDED_MEASURE_STATES,
    ApiKey,
    Institution,
    LedgerEntry,
    Measure,
    Practitioner,
    PractitionerState,
    Registration,
    Violation,
)
from .sql import in_values


def institution_by_code(session: Session, code: str) -> Institution | None:
    return session.scalars(select(Institution).where(Institution.code == code)).one_or_none()


def practitioner_by_code(session: Session, code: str) -> Practitioner | None:
    return session.scalars(select(Practitioner).where(Practitioner.code == code)).one_or_none()


def lock_practitioner(session: Session, code: str) -> Practitioner | None:
    """Serialise every write for one person: FOR UPDATE on PostgreSQL (SQLite holds its write lock)."""
    return session.scalars(
        select(Practitioner).where(Practitioner.code == code).with_for_update()
    ).one_or_none()


def lock_practitioners(session: Session, ids: Collection[int]) -> None:
    """lock_practitioner for many people at once (an import), in id order as the sweeps take them
    one by one, so that the two never wait on each other in a circle."""
    ordered = sorted(ids)
    for start in range(0, len(ordered), 50_000):
        chunk = ordered[start : start + 50_000]
        session.execute(
            select(Practitioner.id)
            .where(in_values(session, Practitioner.id, chunk))
            .order_by(Practitioner.id)
            .with_for_update()
        ).all()


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


# Table columns, not ORM attributes, in the statements every write and every eligibility read
# runs: a statement of plain columns skips the ORM's compile and result handling.
_INSTITUTION = Institution.__table__
_PRACTITIONER = Practitioner.__table__
_STATE = PractitionerState.__table__
_VIOLATION = Violation.__table__
_LEDGER = LedgerEntry.__table__
_REGISTRATION = Registration.__table__
_KEY = ApiKey.__table__

# a key with the codes of its institution and person; every request runs it by hash
# (services.keys.authenticate), a console page by id
_PRINCIPAL = select(
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
).select_from(
    _KEY.outerjoin(_INSTITUTION, _INSTITUTION.c.id == _KEY.c.institution_id).outerjoin(
        _PRACTITIONER, _PRACTITIONER.c.id == _KEY.c.practitioner_id
    )
)
_PRINCIPAL_BY_HASH = _PRINCIPAL.where(_KEY.c.key_hash == bindparam("key_hash"))
_PRINCIPAL_BY_ID = _PRINCIPAL.where(_KEY.c.id == bindparam("key_id"))


def principal_by_hash(reader: Reader, key_hash: str) -> Row | None:
    """An API key with the codes of its institution and person, by the SHA-256 of its secret."""
    return rows_on(reader).execute(_PRINCIPAL_BY_HASH, {"key_hash": key_hash}).one_or_none()


def principal_by_id(session: Session, key_id: int) -> Row | None:
    """The same, by the key's id (the console's session holds the id, never the secret)."""
    return session.connection().execute(_PRINCIPAL_BY_ID, {"key_id": key_id}).one_or_none()


def violations_for(session: Session, practitioner_id: int) -> Sequence[tuple[Violation, str]]:
    rows = session.execute(
        select(Violation, Institution.code)
        .join(Institution, Institution.id == Violation.institution_id)
        .where(Violation.practitioner_id == practitioner_id)
        .order_by(Violation.id)
    ).all()
    return [(v, c) for v, c in rows]


# what an eligibility answer needs of a person's snapshot: rows, not entities, since a batch or a
# roster page reads up to 2000 of them and builds no ORM object of any; and the snapshot as its JSON
# text (`state_json`), which rules.snapshot decodes straight into the three parts eligibility reads,
# instead of the driver building every dict and list of it first (a third of a roster's time)
_STATE_ROW = (
    _STATE.c.practitioner_id,
    _STATE.c.practitioner_code,
    cast(_STATE.c.state, Text).label("state_json"),
)
# built once: the eligibility read runs this on every request, and building a select (and its
# cache key) costs more than the lookup itself
_STATE_BY_CODE = select(*_STATE_ROW).where(_STATE.c.practitioner_code == bindparam("code"))


def state_by_code(reader: Reader, code: str) -> Row | None:
    """The person's eligibility row (practitioner_id, practitioner_code, state_json), read-only."""
    # on the session's connection: a plain statement needs none of the ORM's execution
    return rows_on(reader).execute(_STATE_BY_CODE, {"code": code}).one_or_none()


def states_by_codes(reader: Reader, codes: Collection[str]) -> list[Row]:
    """The eligibility rows of the people with these codes (unknown codes have none), read-only."""
    return list(
        rows_on(reader)
        .execute(select(*_STATE_ROW).where(in_values(reader, _STATE.c.practitioner_code, list(codes))))
        .all()
    )


def registered_on(at: dt.date) -> tuple[Any, Any]:
    """Registrations in force on `at` (ranges are half-open: [start_date, end_date))."""
    return (
        _REGISTRATION.c.start_date <= at,
        or_(_REGISTRATION.c.end_date.is_(None), _REGISTRATION.c.end_date > at),
    )


def roster_page(
    reader: Reader, institution_id: int, *, at: dt.date, after: str | None, limit: int
) -> list[Row]:
    """Eligibility rows of the people registered at the institution on `at`, by code, after `after`."""
    # a semi-join, not a join + DISTINCT: a person registered twice there is one row either way,
    # but DISTINCT would sort every candidate's whole snapshot to find out
    registered = exists().where(
        _REGISTRATION.c.practitioner_id == _STATE.c.practitioner_id,
        _REGISTRATION.c.institution_id == institution_id,
        *registered_on(at),
    )
    query = select(*_STATE_ROW).where(registered).order_by(_STATE.c.practitioner_code).limit(limit)
    if after is not None:
        query = query.where(_STATE.c.practitioner_code > after)
    return list(rows_on(reader).execute(query).all())


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


def snapshot_of(session: Session, practitioner_id: int) -> PractitionerState | None:
    """The person's stored derived state (rules.snapshot), or None before their first write."""
    return session.get(PractitionerState, practitioner_id)


def institution_id(reader: Reader, code: str) -> int | None:
    # a session's scalar() flushes what it holds first; a rows-only read's connection has nothing to flush
    return reader.scalar(select(Institution.id).where(Institution.code == code))


def live_measures(session: Session, practitioner_id: int, *, year: int | None = None) -> list[Measure]:
    """The person's live measure tasks (not cancelled or withdrawn), with their codes loaded, oldest first."""
    query = (
        select(Measure)
        .options(joinedload(Measure.practitioner), joinedload(Measure.institution))
        .where(Measure.practitioner_id == practitioner_id, Measure.state.not_in(ENDED_MEASURE_STATES))
        .order_by(Measure.triggered_on, Measure.id)
    )
    if year is not None:
        query = query.where(Measure.year == year)
    return list(session.scalars(query))


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
