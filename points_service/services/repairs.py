"""Point repair (记分修复, docs/rules.md §4): submit, institution review, agency review.

Only the agency's approval takes effect, on its date, as a `repair` ledger entry; the rules work
out the credit and any shortened term from the ledger, so a later revocation is accounted for.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..persistence import queries
from ..persistence.models import Institution, LedgerEntry, Practitioner, RepairApplication
from ..rules.calendar import local_date, score_year
from ..rules.repair import repair_credit_on, repair_refusal
from . import events
from .access import Principal, require, sees
from .audit import record_audit
from .errors import Forbidden, NotFound, RuleViolation, WorkflowConflict
from .registry import may_see_practitioner
from .state import recompute_state, stored_state
from .versions import check_version, lock_owner

DECISIONS = ("approve", "reject")


@dataclass(frozen=True)
class SubmitRepair:
    practitioner_code: str
    institution_code: str
    activity: str
    completed_on: dt.date
    evidence_ref: str


@dataclass(frozen=True)
class ReviewRepair:
    repair_id: int
    decision: str
    comment: str | None
    # the version the reviewer saw, in the body, in If-Match, or both (the API requires one)
    version: int | None = None
    if_match: int | None = None


def submit_repair(
    session: Session, principal: Principal, cmd: SubmitRepair, *, policies, now: dt.datetime, request_id=None
) -> RepairApplication:
    require(principal, "repairs:submit")
    if principal.role == "practitioner" and principal.practitioner_code != cmd.practitioner_code:
        raise Forbidden("a practitioner may only apply to repair their own points")
    if principal.role == "hr_system" and principal.institution_code != cmd.institution_code:
        raise Forbidden("an HR system may only apply on behalf of its own staff")
    institution = queries.institution_by_code(session, cmd.institution_code)
    if institution is None:
        raise RuleViolation(
            f"no institution {cmd.institution_code}", rule="docs/rules.md rule 19", field="institution_code"
        )
    practitioner = queries.lock_practitioner(session, cmd.practitioner_code)
    if practitioner is None or not may_see_practitioner(session, principal, practitioner.id):
        raise RuleViolation(
            f"no practitioner {cmd.practitioner_code}",
            rule="docs/rules.md rule 19",
            field="practitioner_code",
        )
    if not queries.is_registered_at(session, practitioner.id, institution.id):
        raise RuleViolation(
            f"{cmd.practitioner_code} has never been registered at {cmd.institution_code}, which must review "
            "the application first",
            rule="docs/rules.md rule 19",
            field="institution_code",
        )
    today = local_date(now)
    if cmd.completed_on > today:
        raise RuleViolation(
            "completed_on is in the future", rule="docs/rules.md rule 19", field="completed_on"
        )
    policy = policies.profile_for(institution.region_code, today)
    if cmd.activity not in policy.repair.credits:
        raise RuleViolation(
            f"{policy.id} has no repair activity {cmd.activity}",
            rule="docs/rules.md rule 20",
            field="activity",
        )
    refusal = repair_refusal(
        stored_state(queries.state_by_code(session, practitioner.code)),
        activity=cmd.activity,
        day=today,
        policy=policy,
    )
    if refusal is not None:
        raise RuleViolation(refusal, rule=refusal.split(":")[0], field="activity")
    application = RepairApplication(
        practitioner_id=practitioner.id,
        institution_id=institution.id,
        activity=cmd.activity,
        completed_on=cmd.completed_on,
        evidence_ref=cmd.evidence_ref,
        status="submitted",
        submitted_at=now,
        submitted_by=principal.actor,
    )
    session.add(application)
    session.flush()
    _emit(session, application, practitioner, "repair.submitted", now=now)
    record_audit(
        session,
        principal,
        action="repair.submitted",
        object_type="repair",
        object_id=application.id,
        detail={
            "practitioner_code": practitioner.code,
            "institution_code": institution.code,
            "activity": cmd.activity,
            "completed_on": cmd.completed_on.isoformat(),
        },
        now=now,
        request_id=request_id,
    )
    return application


def _visible_application(session: Session, principal: Principal, repair_id: int) -> RepairApplication:
    application = session.get(RepairApplication, repair_id)
    if application is None or not sees(
        principal, practitioner=application.practitioner_id, institution=application.institution_id
    ):
        raise NotFound(f"no repair application {repair_id}")
    return application


def get_repair(session: Session, principal: Principal, repair_id: int) -> RepairApplication:
    require(principal, "repairs:read")
    return _visible_application(session, principal, repair_id)


def list_repairs(
    session: Session,
    principal: Principal,
    *,
    practitioner_code: str | None,
    status: str | None,
    after: int | None,
    limit: int,
) -> tuple[list[RepairApplication], int | None]:
    require(principal, "repairs:read")
    query = (
        select(RepairApplication)
        .where(
            sees(
                principal,
                practitioner=RepairApplication.practitioner_id,
                institution=RepairApplication.institution_id,
            )
        )
        .order_by(RepairApplication.id)
        .limit(limit + 1)
    )
    if practitioner_code is not None:
        query = query.join(Practitioner, Practitioner.id == RepairApplication.practitioner_id).where(
            Practitioner.code == practitioner_code
        )
    if status is not None:
        query = query.where(RepairApplication.status == status)
    if after is not None:
        query = query.where(RepairApplication.id > after)
    rows = list(session.scalars(query))
    page = rows[:limit]
    return page, (page[-1].id if len(rows) > limit and page else None)


def review_repair(
    session: Session,
    principal: Principal,
    cmd: ReviewRepair,
    *,
    stage: str,
    policies,
    now: dt.datetime,
    request_id=None,
) -> RepairApplication:
    """One review step; stale versions and out-of-order steps are conflicts (issue 3)."""
    require(principal, "repairs:institution_review" if stage == "institution" else "repairs:agency_review")
    application = _visible_application(session, principal, cmd.repair_id)
    # two reviewers pressing the button at once queue here; the loser then sees the new version
    practitioner = lock_owner(session, application)
    check_version(application.version, cmd.version, cmd.if_match)
    if stage == "institution" and application.status != "submitted":
        raise WorkflowConflict(
            f"the application is {application.status}; the institution reviews only submitted applications",
            current_status=application.status,
        )
    if stage == "agency" and application.status != "institution_approved":
        raise WorkflowConflict(
            "the agency reviews only after the institution has approved"
            if application.status == "submitted"
            else f"the application is already {application.status}",
            current_status=application.status,
        )
    if cmd.decision not in DECISIONS:
        raise RuleViolation(
            "decision must be approve or reject", rule="docs/api.md Repairs", field="decision"
        )
    approve = cmd.decision == "approve"
    if stage == "institution":
        application.status = "institution_approved" if approve else "rejected"
        application.institution_comment = cmd.comment
        application.institution_reviewed_at = now
        application.institution_reviewed_by = principal.actor
    else:
        application.status = "approved" if approve else "rejected"
        application.agency_comment = cmd.comment
        application.agency_reviewed_at = now
        application.agency_reviewed_by = principal.actor
        application.agency_reviewed_on = local_date(now)
        if approve:
            _credit(session, practitioner, application, policies=policies, now=now, principal=principal)
    session.flush()
    _emit(session, application, practitioner, f"repair.{application.status}", now=now)
    record_audit(
        session,
        principal,
        action=f"repair.{stage}_review",
        object_type="repair",
        object_id=application.id,
        detail={"decision": cmd.decision, "comment": cmd.comment, "status": application.status},
        now=now,
        request_id=request_id,
    )
    return application


def _emit(session, application, practitioner, kind: str, *, now: dt.datetime) -> None:
    events.emit(
        session,
        kind,
        data={
            "repair_id": application.id,
            "practitioner_code": practitioner.code,
            "activity": application.activity,
            "status": application.status,
            "link": f"/v1/repairs/{application.id}",
        },
        now=now,
        practitioner_id=practitioner.id,
        practitioner_code=practitioner.code,
        institution_id=application.institution_id,
    )


def _credit(session, practitioner, application, *, policies, now, principal) -> None:
    today = local_date(now)
    institution = session.get(Institution, application.institution_id)
    policy = policies.profile_for(institution.region_code, today)
    state = stored_state(queries.state_by_code(session, practitioner.code))
    refusal = repair_refusal(state, activity=application.activity, day=today, policy=policy)
    if refusal is not None:
        # it could succeed when submitted; points or caps have changed since
        raise RuleViolation(refusal, rule=refusal.split(":")[0], field="decision")
    credit, _ = repair_credit_on(state, activity=application.activity, day=today, policy=policy)
    session.add(
        LedgerEntry(
            practitioner_id=practitioner.id,
            kind="repair",
            score_year=score_year(today),
            effective_on=today,
            # the credit as of today; derived state recomputes it from the whole ledger
            points=-credit,
            repair_id=application.id,
            activity=application.activity,
            profile_id=policy.id,
            recorded_at=now,
            recorded_by=principal.actor,
        )
    )
    session.flush()
    recompute_state(session, practitioner, policies=policies, now=now)


def credit_of(session: Session, application: RepairApplication) -> dict | None:
    """The credit as the rules now compute it from the ledger (points and months shortened)."""
    if application.status != "approved":
        return None
    code = session.scalar(select(Practitioner.code).where(Practitioner.id == application.practitioner_id))
    for credit in stored_state(queries.state_by_code(session, code)).repairs:
        if credit.repair_id == application.id:
            return {
                "points": credit.points,
                "months_shortened": credit.months_shortened,
                "shortened": credit.shortened,
            }
    return None
