"""Measures as tasks (docs/rules.md rule 13): institution talks for the hospital, agency talks and notices
for the agency. Triggered and cancelled by the rules (services.state); completed by people here."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..persistence.models import Institution, Measure, Practitioner
from ..rules.calendar import local_date
from .access import Principal, require, sees
from .audit import record_audit
from .errors import NotFound, RuleViolation, WorkflowConflict
from .versions import lock_owner

INSTITUTION_KINDS = ("institution_talk",)
AGENCY_KINDS = ("agency_talk", "public_notice")


def _kinds_for(principal: Principal) -> tuple[str, ...]:
    if principal.role == "hr_system":
        return INSTITUTION_KINDS
    if principal.role == "reviewer":
        return AGENCY_KINDS
    return INSTITUTION_KINDS + AGENCY_KINDS


def list_measures(
    session: Session,
    principal: Principal,
    *,
    institution_code: str | None,
    state: str | None,
    after: int | None,
    limit: int,
) -> tuple[list[tuple[Measure, str, str]], int | None]:
    """The caller's queue: (measure, practitioner code, institution code), oldest first."""
    require(principal, "measures:read")
    query = (
        select(Measure, Practitioner.code, Institution.code)
        .join(Practitioner, Practitioner.id == Measure.practitioner_id)
        .join(Institution, Institution.id == Measure.institution_id)
        .where(
            Measure.kind.in_(_kinds_for(principal)),
            sees(principal, practitioner=Measure.practitioner_id, institution=Measure.institution_id),
        )
        .order_by(Measure.id)
        .limit(limit + 1)
    )
    if institution_code is not None:
        if principal.role == "hr_system" and institution_code != principal.institution_code:
            raise NotFound(f"no institution {institution_code}")  # another hospital's queue
        query = query.where(Institution.code == institution_code)
    if state is not None:
        query = query.where(Measure.state == state)
    if after is not None:
        query = query.where(Measure.id > after)
    rows = [tuple(r) for r in session.execute(query)]
    page = rows[:limit]
    return page, (page[-1][0].id if len(rows) > limit and page else None)  # type: ignore[return-value]


def _visible_measure(session: Session, principal: Principal, measure_id: int) -> Measure:
    measure = session.get(Measure, measure_id)
    if (
        measure is None
        or measure.kind not in _kinds_for(principal)
        or not sees(principal, practitioner=measure.practitioner_id, institution=measure.institution_id)
    ):
        raise NotFound(f"no measure {measure_id}")
    return measure


def complete_measure(
    session: Session,
    principal: Principal,
    measure_id: int,
    *,
    completed_on: dt.date,
    note: str | None,
    publish: bool = False,
    now: dt.datetime,
    request_id: str | None = None,
) -> Measure:
    """Mark a talk or notice done; `publish` marks a circulated notice published on the website."""
    require(principal, "measures:complete")
    measure = _visible_measure(session, principal, measure_id)
    lock_owner(session, measure)  # the rules may cancel it concurrently (a revocation)
    if publish:
        if measure.kind != "public_notice":
            raise WorkflowConflict("only a public notice is published")
        if measure.state not in ("pending", "completed"):
            raise WorkflowConflict(f"the notice is {measure.state}", current_state=measure.state)
    elif measure.state != "pending":
        raise WorkflowConflict(f"the measure is {measure.state}", current_state=measure.state)
    if completed_on > local_date(now):
        raise RuleViolation("the date is in the future", rule="docs/rules.md rule 13", field="completed_on")
    if completed_on < measure.triggered_on:
        raise RuleViolation(
            f"the measure was triggered on {measure.triggered_on.isoformat()}",
            rule="docs/rules.md rule 13",
            field="completed_on",
        )
    if publish:
        measure.state = "published"
        measure.published_on = completed_on
        measure.completed_on = measure.completed_on or completed_on
    else:
        measure.state = "completed"
        measure.completed_on = completed_on
    measure.note = note if note is not None else measure.note
    measure.completed_at = now
    measure.completed_by = principal.actor
    session.flush()
    record_audit(
        session,
        principal,
        action=f"measure.{measure.state}",
        object_type="measure",
        object_id=measure.id,
        detail={"on": completed_on.isoformat(), "note": note},
        now=now,
        request_id=request_id,
    )
    return measure


def measure_codes(session: Session, measure: Measure) -> tuple[str, str]:
    practitioner = session.scalar(select(Practitioner.code).where(Practitioner.id == measure.practitioner_id))
    institution = session.scalar(select(Institution.code).where(Institution.id == measure.institution_id))
    return practitioner, institution  # type: ignore[return-value]
