"""Measures as tasks (docs/rules.md rule 13): institution talks for the hospital, agency talks and notices
for the agency. Triggered and cancelled by the rules (services.state); completed by people here."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, joinedload

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
) -> tuple[list[Measure], int | None]:
    """The caller's queue of tasks, oldest first, with the codes of the person and institution."""
    require(principal, "measures:read")
    query = (
        _with_parties(select(Measure))
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
        query = query.where(
            Measure.institution_id.in_(select(Institution.id).where(Institution.code == institution_code))
        )
    if state is not None:
        query = query.where(Measure.state == state)
    if after is not None:
        query = query.where(Measure.id > after)
    rows = list(session.scalars(query))
    page = rows[:limit]
    return page, (page[-1].id if len(rows) > limit and page else None)


def _with_parties(query: Select) -> Select:
    return query.options(joinedload(Measure.practitioner), joinedload(Measure.institution))


def _visible_measure(session: Session, principal: Principal, measure_id: int) -> Measure:
    measure = session.scalar(_with_parties(select(Measure)).where(Measure.id == measure_id))
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
    published_name: str | None = None,
    now: dt.datetime,
    request_id: str | None = None,
) -> Measure:
    """Mark a talk or notice done; `publish` marks a circulated notice published on the website,
    under `published_name` (default: the registry name), as the public register then shows it."""
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
        measure.published_name = published_name or session.scalar(
            select(Practitioner.name).where(Practitioner.id == measure.practitioner_id)
        )
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
        detail={"on": completed_on.isoformat(), "note": note}
        | ({"published_name": measure.published_name} if publish else {}),
        now=now,
        request_id=request_id,
    )
    return measure
