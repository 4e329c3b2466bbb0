"""Point repair (记分修复, docs/rules.md §4): submit, institution review, agency review.

Only the agency's approval takes effect, on its date, as a `repair` ledger entry; the rules work
out the credit and any shortened term from the ledger, so a later revocation is accounted for.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, joinedload

from ..persistence import queries
from ..persistence.models import Institution, LedgerEntry, Practitioner, PractitionerState, RepairApplication
from ..rules import standing as rules
from ..rules.calendar import local_date, score_year
from ..rules.policy import Policy, PolicySet
from ..rules.repair import repair_credit_on, repair_refusal
from . import events
from .access import Principal, may_see_practitioner, require, sees
from .audit import record_audit
from .errors import Forbidden, NotFound, RuleViolation, WorkflowConflict
from .state import derive_from, recompute, stored_state
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


@dataclass(frozen=True)
class Repair:
    """An application and, once approved, its credit as the rules now compute it from the ledger."""

    application: RepairApplication
    credit: rules.RepairCredit | None


def submit_repair(
    session: Session, principal: Principal, cmd: SubmitRepair, *, policies, now: dt.datetime, request_id=None
) -> Repair:
    require(principal, "repairs:submit")
    submission = check_submission(session, principal, cmd, policies=policies, now=now)
    refusal = submission.refusal(cmd.activity)
    if refusal is not None:  # an application that cannot succeed is refused now, not after review
        raise RuleViolation(refusal, rule=refusal.split(":")[0], field="activity")
    practitioner, institution = submission.practitioner, submission.institution
    application = RepairApplication(
        practitioner=practitioner,
        institution=institution,
        activity=cmd.activity,
        completed_on=cmd.completed_on,
        evidence_ref=cmd.evidence_ref,
        status="submitted",
        submitted_at=now,
        submitted_by=principal.actor,
    )
    session.add(application)
    session.flush()
    _emit(session, application, "repair.submitted", now=now)
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
    return Repair(application, None)


@dataclass(frozen=True)
class Submission:
    """An application that passed every check but the rules' own (rules 19, 20); the person locked."""

    practitioner: Practitioner
    institution: Institution
    policy: Policy
    state: rules.PersonState
    today: dt.date

    def refusal(self, activity: str) -> str | None:
        """Why the rules say it cannot succeed if approved today (rules 20, 21), or None."""
        return repair_refusal(self.state, activity=activity, day=self.today, policy=self.policy)


def check_submission(
    session: Session, principal: Principal, cmd: SubmitRepair, *, policies: PolicySet, now: dt.datetime
) -> Submission:
    """Everything a submission is checked against before the rules are asked (rule 19)."""
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
    state = stored_state(queries.snapshot_of(session, practitioner.id))
    return Submission(practitioner, institution, policy, state, today)


@dataclass(frozen=True)
class RepairPreview:
    """What an application would bring if the agency approved it today."""

    practitioner_code: str
    institution_code: str
    activity: str
    profile: str
    score_year: int
    points_total: int  # the year's points now
    activity_value: int  # what the activity is worth in the profile (rule 20)
    allowed: bool
    refusal: str | None  # why it cannot succeed, citing the rule (allowed is False)
    credit: int  # the points it would remove
    limited_by: str | None  # the cap that cut the credit below the activity's value (rule 21)
    months_shortened: int  # off the suspension or bar in effect (rule 22)
    shortened: str | None  # "suspension" | "bar" | None


# the id the previewed approval carries while the rules replay the ledger: no stored row has it
_PREVIEWED = -1


def preview_repair(
    session: Session, principal: Principal, cmd: SubmitRepair, *, policies: PolicySet, now: dt.datetime
) -> RepairPreview:
    """The rules' answer to an application before it is submitted: the same checks as a submission
    (and the same errors), then the credit and shortened months of an approval today. Writes nothing."""
    require(principal, "repairs:submit")
    submission = check_submission(session, principal, cmd, policies=policies, now=now)
    policy, state = submission.policy, submission.state
    refusal = submission.refusal(cmd.activity)
    credit, limited_by = repair_credit_on(state, activity=cmd.activity, day=submission.today, policy=policy)
    preview = RepairPreview(
        practitioner_code=submission.practitioner.code,
        institution_code=submission.institution.code,
        activity=cmd.activity,
        profile=policy.id,
        score_year=score_year(submission.today),
        points_total=state.year(score_year(submission.today)).points_total,
        activity_value=policy.repair.credits[cmd.activity],
        allowed=refusal is None,
        refusal=refusal,
        credit=0 if refusal else credit,
        limited_by=None if refusal else limited_by,
        months_shortened=0,
        shortened=None,
    )
    if refusal is not None:
        return preview
    # the months come from the whole ledger replayed with the approval in it: rule 22 counts every
    # 3 points repaired in the year against the term in effect on the approval date
    ledger = queries.ledger_for(session, submission.practitioner.id)
    approval = LedgerEntry(
        id=max((e.id for e in ledger), default=0) + 1,
        kind="repair",
        score_year=score_year(submission.today),
        effective_on=submission.today,
        points=-credit,
        repair_id=_PREVIEWED,
        activity=cmd.activity,
        profile_id=policy.id,
    )  # never added to the session: the rules read it, nothing stores it
    replayed = derive_from([*ledger, approval], session, submission.practitioner, policies)
    applied = next(c for c in replayed.repairs if c.repair_id == _PREVIEWED)
    return replace(
        preview, credit=applied.points, months_shortened=applied.months_shortened, shortened=applied.shortened
    )


def _visible_application(session: Session, principal: Principal, repair_id: int) -> RepairApplication:
    application = session.scalar(
        _with_parties(select(RepairApplication)).where(RepairApplication.id == repair_id)
    )
    if application is None or not sees(
        principal, practitioner=application.practitioner_id, institution=application.institution_id
    ):
        raise NotFound(f"no repair application {repair_id}")
    return application


def _with_parties(query: Select) -> Select:
    return query.options(
        joinedload(RepairApplication.practitioner), joinedload(RepairApplication.institution)
    )


def get_repair(session: Session, principal: Principal, repair_id: int) -> Repair:
    require(principal, "repairs:read")
    [repair] = with_credits(session, [_visible_application(session, principal, repair_id)])
    return repair


def list_repairs(
    session: Session,
    principal: Principal,
    *,
    practitioner_code: str | None,
    status: str | None,
    after: int | None,
    limit: int,
) -> tuple[list[Repair], int | None]:
    require(principal, "repairs:read")
    query = (
        _with_parties(select(RepairApplication))
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
        query = query.where(
            RepairApplication.practitioner_id.in_(
                select(Practitioner.id).where(Practitioner.code == practitioner_code)
            )
        )
    if status is not None:
        query = query.where(RepairApplication.status == status)
    if after is not None:
        query = query.where(RepairApplication.id > after)
    rows = list(session.scalars(query))
    page = rows[:limit]
    return with_credits(session, page), (page[-1].id if len(rows) > limit and page else None)


def with_credits(session: Session, applications: list[RepairApplication]) -> list[Repair]:
    """Each application with its credit, read from the snapshots of the people approved (one query)."""
    approved = {a.practitioner_id for a in applications if a.status == "approved"}
    credits: dict[int, rules.RepairCredit] = {}
    if approved:
        for snapshot in session.scalars(
            select(PractitionerState).where(PractitionerState.practitioner_id.in_(approved))
        ):
            credits.update((c.repair_id, c) for c in stored_state(snapshot).repairs)
    return [Repair(a, credits.get(a.id) if a.status == "approved" else None) for a in applications]


def review_repair(
    session: Session,
    principal: Principal,
    cmd: ReviewRepair,
    *,
    stage: str,
    policies,
    now: dt.datetime,
    request_id=None,
) -> Repair:
    """One review step; stale versions and out-of-order steps are conflicts."""
    require(principal, "repairs:institution_review" if stage == "institution" else "repairs:agency_review")
    application = _visible_application(session, principal, cmd.repair_id)
    # two reviewers pressing the button at once queue here; the loser then sees the new version
    practitioner = lock_owner(session, application)
    check_version(application.version, cmd.version, cmd.if_match)
    _require_awaiting(application, stage)
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
    _emit(session, application, f"repair.{application.status}", now=now)
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
    [repair] = with_credits(session, [application])
    return repair


def _require_awaiting(application: RepairApplication, stage: str) -> None:
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


def _emit(session: Session, application: RepairApplication, kind: str, *, now: dt.datetime) -> None:
    events.emit(
        session,
        kind,
        data={
            "repair_id": application.id,
            "practitioner_code": application.practitioner.code,
            "activity": application.activity,
            "status": application.status,
            "link": f"/v1/repairs/{application.id}",
        },
        now=now,
        practitioner_id=application.practitioner_id,
        practitioner_code=application.practitioner.code,
        institution_id=application.institution_id,
    )


def _credit(session, practitioner, application, *, policies, now, principal) -> None:
    """The agency's approval: a repair entry in the ledger, then everything derived recomputed."""
    today = local_date(now)
    policy = policies.profile_for(application.institution.region_code, today)
    state = stored_state(queries.snapshot_of(session, practitioner.id))
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
    recompute(session, practitioner, policies=policies, now=now)
