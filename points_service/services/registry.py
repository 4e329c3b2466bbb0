"""Institutions, practitioners and registrations (docs/rules.md §1)."""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..persistence import pii, queries
from ..persistence.models import Institution, Practitioner, Registration
from ..rules.calendar import local_date
from ..rules.policy import PolicySet
from . import events
from .access import Principal, readable_violations, require, sees, visible_practitioner
from .audit import record_audit
from .errors import (
    DuplicateInstitution,
    DuplicatePractitioner,
    Forbidden,
    NotFound,
    RegistrationConflict,
    ReregistrationBarred,
    RuleViolation,
)
from .state import recompute, stored_state


@dataclass(frozen=True)
class CreateInstitution:
    code: str
    name: str
    kind: str
    region_code: str


@dataclass(frozen=True)
class CreatePractitioner:
    code: str
    name: str
    id_number: str
    category: str


@dataclass(frozen=True)
class Register:
    practitioner_code: str
    institution_code: str
    start_date: dt.date
    # an HR system names the person by code and national ID together (docs/api.md Registry)
    id_number: str | None = None


@dataclass(frozen=True)
class EndRegistration:
    practitioner_code: str
    institution_code: str
    end_date: dt.date
    reason: str


T = TypeVar("T")


@dataclass(frozen=True)
class Created(Generic[T]):
    value: T
    created: bool  # False: an identical earlier request is replayed


# -- institutions ---------------------------------------------------------------------------------


def create_institution(
    session: Session,
    principal: Principal,
    cmd: CreateInstitution,
    *,
    now: dt.datetime,
    request_id: str | None,
) -> Created[Institution]:
    require(principal, "institutions:write")
    existing = queries.institution_by_code(session, cmd.code)
    if existing is not None:
        same = (existing.name, existing.kind, existing.region_code) == (cmd.name, cmd.kind, cmd.region_code)
        if not same:
            raise DuplicateInstitution(f"institution {cmd.code} exists with different data", code=cmd.code)
        return Created(existing, created=False)
    institution = Institution(
        code=cmd.code, name=cmd.name, kind=cmd.kind, region_code=cmd.region_code, created_at=now
    )
    session.add(institution)
    session.flush()
    record_audit(
        session,
        principal,
        action="institution.created",
        object_type="institution",
        object_id=cmd.code,
        detail={"code": cmd.code, "name": cmd.name, "kind": cmd.kind, "region_code": cmd.region_code},
        now=now,
        request_id=request_id,
    )
    return Created(institution, created=True)


def get_institution(session: Session, principal: Principal, code: str) -> Institution:
    require(principal, "institutions:read")
    institution = queries.institution_by_code(session, code)
    if institution is None or not _may_see_institution(session, principal, institution):
        raise NotFound(f"no institution {code}")
    return institution


def _may_see_institution(session: Session, principal: Principal, institution: Institution) -> bool:
    if principal.is_national:
        return True
    if principal.role == "hr_system":
        return principal.institution_id == institution.id
    assert principal.practitioner_id is not None
    return queries.is_registered_at(session, principal.practitioner_id, institution.id)


# -- practitioners --------------------------------------------------------------------------------


def create_practitioner(
    session: Session,
    principal: Principal,
    cmd: CreatePractitioner,
    *,
    keys: pii.PiiKeys,
    policies: PolicySet,
    now: dt.datetime,
    request_id: str | None,
) -> Created[Person]:
    require(principal, "practitioners:write")
    try:
        national_id = pii.normalise_national_id(cmd.id_number)
    except pii.InvalidNationalId as exc:
        raise RuleViolation(str(exc), rule="docs/rules.md rule 2 (GB 11643)", field="id_number") from None
    # while the index key is rotated a stored number may be under either key (pii.blind_indexes)
    indexes = pii.blind_indexes(keys, national_id)
    index = indexes[0]
    existing = queries.lock_practitioner(session, cmd.code)
    if existing is not None:
        same = (existing.name, existing.category) == (cmd.name, cmd.category)
        if not same or existing.national_id_index not in indexes:
            raise DuplicatePractitioner(f"practitioner {cmd.code} exists with different data", code=cmd.code)
        return Created(
            Person(existing, registrations_of(session, principal, existing, now=now)), created=False
        )
    if session.scalar(select(Practitioner.id).where(Practitioner.national_id_index.in_(indexes))) is not None:
        raise DuplicatePractitioner("this national ID number is already held by another practitioner code")
    practitioner = Practitioner(
        code=cmd.code,
        name=cmd.name,
        category=cmd.category,
        national_id_cipher=pii.encrypt_national_id(
            keys, national_id, associated_data=cmd.code.encode("utf-8")
        ),
        national_id_index=index,
        national_id_masked=pii.mask_national_id(national_id),
        created_at=now,
    )
    session.add(practitioner)
    session.flush()
    recompute(session, practitioner, policies=policies, now=now)
    record_audit(
        session,
        principal,
        action="practitioner.created",
        object_type="practitioner",
        object_id=cmd.code,
        detail={
            "code": cmd.code,
            "name": cmd.name,
            "category": cmd.category,
            "id_number": practitioner.national_id_masked,
        },
        now=now,
        request_id=request_id,
    )
    return Created(Person(practitioner, []), created=True)


# -- registrations (rule 4, 17) -------------------------------------------------------------------


NO_MATCH = "no practitioner matches this practitioner code and national ID number together"


def register(
    session: Session,
    principal: Principal,
    cmd: Register,
    *,
    keys: pii.PiiKeys,
    policies: PolicySet,
    now: dt.datetime,
    request_id: str | None,
) -> Created[RegistrationStanding]:
    require(principal, "registrations:write")
    _require_own_institution(principal, cmd.institution_code)
    institution = queries.institution_by_code(session, cmd.institution_code)
    if institution is None:
        raise RuleViolation(
            f"no institution {cmd.institution_code}", rule="docs/rules.md rule 4", field="institution_code"
        )
    if principal.role == "hr_system" and cmd.id_number is None:
        raise RuleViolation(
            "an HR system names the person by practitioner code and id_number together",
            rule="docs/api.md Registry",
            field="id_number",
        )
    practitioner = queries.lock_practitioner(session, cmd.practitioner_code)
    if cmd.id_number is not None and not _holds_national_id(keys, practitioner, cmd.id_number):
        # one answer for an unknown code, an unknown number and a pair that does not match, so that
        # nobody learns from it which codes or numbers exist
        raise RuleViolation(NO_MATCH, rule="docs/api.md Registry")
    if practitioner is None:
        raise NotFound(f"no practitioner {cmd.practitioner_code}")
    state = stored_state(queries.snapshot_of(session, practitioner.id))
    for span in state.registrations:
        if span.institution_code != institution.code or span.void:
            continue
        if span.start == cmd.start_date and span.end is None:
            return Created(
                registration_of(session, principal, practitioner, span.registration_id, now=now),
                created=False,
            )
        # the new registration is open-ended, so it overlaps anything still running when it starts;
        # a registration ended by a termination counts as ended (rule 17)
        if span.end is None or span.end > cmd.start_date:
            raise RegistrationConflict(
                f"practitioner {practitioner.code} already holds a registration at {institution.code} "
                f"from {span.start.isoformat()}",
                registration_id=span.registration_id,
            )
    for termination in state.terminations:
        if termination.start <= cmd.start_date < termination.barred_until:
            raise ReregistrationBarred(
                f"re-registration is barred until {state.barred_until.isoformat()} (docs/rules.md rule 17)",  # type: ignore[union-attr]
                barred_until=state.barred_until.isoformat(),  # type: ignore[union-attr]
            )
    registration = Registration(
        practitioner_id=practitioner.id,
        institution_id=institution.id,
        start_date=cmd.start_date,
        created_at=now,
        created_by=principal.actor,
    )
    session.add(registration)
    session.flush()
    detail = {
        "practitioner_code": practitioner.code,
        "institution_code": institution.code,
        "registration_id": registration.id,
        "start_date": cmd.start_date.isoformat(),
    }
    _registration_changed(
        session,
        principal,
        "registration.created",
        practitioner,
        institution,
        detail,
        now=now,
        request_id=request_id,
    )
    recompute(session, practitioner, policies=policies, now=now)
    return Created(registration_of(session, principal, practitioner, registration.id, now=now), created=True)


def end_registration(
    session: Session,
    principal: Principal,
    cmd: EndRegistration,
    *,
    policies: PolicySet,
    now: dt.datetime,
    request_id: str | None,
) -> RegistrationStanding:
    require(principal, "registrations:write")
    _require_own_institution(principal, cmd.institution_code)
    practitioner = queries.lock_practitioner(session, cmd.practitioner_code)
    institution = queries.institution_by_code(session, cmd.institution_code)
    if practitioner is None or institution is None:
        raise NotFound(f"no registration of {cmd.practitioner_code} at {cmd.institution_code}")
    open_rows = [
        r
        for r, _ in queries.registrations_for(session, practitioner.id)
        if r.institution_id == institution.id and r.end_date is None
    ]
    if not open_rows:
        raise NotFound(f"no open registration of {cmd.practitioner_code} at {cmd.institution_code}")
    registration = open_rows[-1]
    if cmd.end_date <= registration.start_date:
        raise RuleViolation(
            f"end_date must be after the start date {registration.start_date.isoformat()} "
            "(registrations are [start, end))",
            rule="docs/rules.md rule 4",
            field="end_date",
        )
    registration.end_date = cmd.end_date
    registration.end_reason = cmd.reason
    registration.ended_at = now
    registration.ended_by = principal.actor
    session.flush()
    detail = {
        "practitioner_code": practitioner.code,
        "institution_code": institution.code,
        "registration_id": registration.id,
        "end_date": cmd.end_date.isoformat(),
        "reason": cmd.reason,
    }
    _registration_changed(
        session,
        principal,
        "registration.ended",
        practitioner,
        institution,
        detail,
        now=now,
        request_id=request_id,
    )
    recompute(session, practitioner, policies=policies, now=now)
    return registration_of(session, principal, practitioner, registration.id, now=now)


def _registration_changed(
    session: Session,
    principal: Principal,
    kind: str,
    practitioner: Practitioner,
    institution: Institution,
    detail: dict,
    *,
    now: dt.datetime,
    request_id: str | None,
) -> None:
    """The feed event and the audit row of a registration change, with the same facts."""
    events.emit(
        session,
        kind,
        data=detail,
        now=now,
        practitioner_id=practitioner.id,
        practitioner_code=practitioner.code,
        institution_id=institution.id,
    )
    record_audit(
        session,
        principal,
        action=kind,
        object_type="registration",
        object_id=detail["registration_id"],
        detail=detail,
        now=now,
        request_id=request_id,
    )


def _holds_national_id(keys: pii.PiiKeys, practitioner: Practitioner | None, id_number: str) -> bool:
    try:
        # while the index key is rotated, the stored index may be under either key
        indexes = pii.blind_indexes(keys, pii.normalise_national_id(id_number))
    except pii.InvalidNationalId:
        return False
    return practitioner is not None and any(
        hmac.compare_digest(index, practitioner.national_id_index) for index in indexes
    )


def _require_own_institution(principal: Principal, institution_code: str) -> None:
    if principal.role == "hr_system" and principal.institution_code != institution_code:
        raise Forbidden("an HR system may only manage registrations at its own institution")


@dataclass(frozen=True)
class RegistrationStanding:
    """A registration as it stands: a termination ends open ones without anyone writing to them."""

    id: int
    practitioner_code: str
    institution_code: str
    start_date: dt.date
    end_date: dt.date | None
    ended_by: str | None  # "registry" | "termination" | None
    end_reason: str | None
    active: bool  # covers today


@dataclass(frozen=True)
class Person:
    """A practitioner with the registrations the reader may see."""

    practitioner: Practitioner
    registrations: list[RegistrationStanding]


def read_practitioner(session: Session, principal: Principal, code: str, *, now: dt.datetime) -> Person:
    practitioner = visible_practitioner(session, principal, code)
    return Person(practitioner, registrations_of(session, principal, practitioner, now=now))


def registrations_of(
    session: Session, principal: Principal, practitioner: Practitioner, *, now: dt.datetime
) -> list[RegistrationStanding]:
    """The registrations the principal may see, as they stand: a hospital sees its own
    registrations of the person, not where else they work."""
    state = stored_state(queries.snapshot_of(session, practitioner.id))
    spans = {s.registration_id: s for s in state.registrations}
    terminations = readable_violations(
        session, principal, [s.termination_violation_id for s in spans.values() if s.termination_violation_id]
    )
    today = local_date(now)
    out = []
    for row, code in queries.registrations_for(session, practitioner.id):
        if not sees(principal, practitioner=practitioner.id, institution=row.institution_id):
            continue
        span = spans.get(row.id)
        end = span.end if span else row.end_date
        terminated = span is not None and span.ended_by == "termination"
        reason = row.end_reason
        if terminated:
            by = span.termination_violation_id  # type: ignore[union-attr]
            reason = (
                f"terminated by violation {by} (docs/rules.md rule 17)"
                if by in terminations
                else "terminated (docs/rules.md rule 17)"
            )
        out.append(
            RegistrationStanding(
                id=row.id,
                practitioner_code=practitioner.code,
                institution_code=code,
                start_date=row.start_date,
                end_date=end,
                ended_by=span.ended_by if span else ("registry" if row.end_date else None),
                end_reason=reason,
                active=row.start_date <= today and (end is None or today < end),
            )
        )
    return out


def registration_of(
    session: Session,
    principal: Principal,
    practitioner: Practitioner,
    registration_id: int,
    *,
    now: dt.datetime,
) -> RegistrationStanding:
    [standing] = [
        r for r in registrations_of(session, principal, practitioner, now=now) if r.id == registration_id
    ]
    return standing
