"""Appeals (申诉, docs/rules.md §5): filed within the window, decided once by the agency.

An amendment or revocation is new ledger entries (rule 24); everything derived is recomputed, so a
revoked decision lifts its suspension and an undone termination re-opens the registrations it ended.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from ..persistence.models import Appeal, LedgerEntry, Violation
from ..rules.appeals import APPEAL_OUTCOMES, WorkdayCalendar, appeal_window, outcome_problem
from ..rules.calendar import local_date
from ..rules.policy import ADJUSTMENTS, PolicySet
from . import events
from .access import Principal, require
from .audit import record_audit
from .errors import Conflict, NotFound, RuleViolation, WorkflowConflict
from .state import recompute
from .versions import check_version, lock_owner
from .violations import decision_of, get_violation, live_decision_entry


@dataclass(frozen=True)
class DecideAppeal:
    appeal_id: int
    outcome: str
    reason: str
    points: int | None = None
    version: int | None = None
    if_match: int | None = None


def file_appeal(
    session: Session,
    principal: Principal,
    violation_id: int,
    reason: str,
    *,
    policies: PolicySet,
    calendar: WorkdayCalendar,
    now: dt.datetime,
    request_id: str | None = None,
) -> Appeal:
    require(principal, "appeals:file")
    practitioner = lock_owner(session, get_violation(session, principal, violation_id).violation)
    violation = decision_of(session, violation_id).violation  # as committed once the lock is held
    if session.scalar(select(Appeal.id).where(Appeal.violation_id == violation.id)) is not None:
        raise Conflict(f"decision {violation.id} has already been appealed; an appeal is decided once")
    if live_decision_entry(violation) is None:
        raise WorkflowConflict(f"decision {violation.id} has been revoked")
    window = appeal_window(
        violation.decided_on, policies.get(violation.profile_id).appeal_window_working_days, calendar
    )
    today = local_date(now)
    if today > window.deadline:
        raise RuleViolation(
            f"the appeal window closed on {window.deadline.isoformat()} "
            f"({policies.get(violation.profile_id).appeal_window_working_days} working days after "
            f"{violation.decided_on.isoformat()})",
            rule="docs/rules.md rule 23",
            deadline=window.deadline.isoformat(),
        )
    appeal = Appeal(
        violation=violation,
        practitioner=practitioner,
        reason=reason,
        status="open",
        filed_on=today,
        deadline=window.deadline,
        deadline_estimated=window.estimated,
        filed_at=now,
        filed_by=principal.actor,
    )
    session.add(appeal)
    session.flush()
    _emit(session, appeal, violation, practitioner, "appeal.filed", now=now)
    record_audit(
        session,
        principal,
        action="appeal.filed",
        object_type="appeal",
        object_id=appeal.id,
        detail={"violation_id": violation.id, "reason": reason},
        now=now,
        request_id=request_id,
    )
    return appeal


def _emit(session, appeal, violation, practitioner, kind: str, *, now: dt.datetime) -> None:
    events.emit(
        session,
        kind,
        data={
            "appeal_id": appeal.id,
            "violation_id": violation.id,
            "practitioner_code": practitioner.code,
            "status": appeal.status,
            "deadline": appeal.deadline.isoformat(),
            "link": f"/v1/appeals/{appeal.id}",
        },
        now=now,
        practitioner_id=practitioner.id,
        practitioner_code=practitioner.code,
        institution_id=violation.institution_id,
    )


def get_appeal(session: Session, principal: Principal, appeal_id: int) -> Appeal:
    require(principal, "appeals:read")
    appeal = session.scalar(
        select(Appeal).options(joinedload(Appeal.practitioner)).where(Appeal.id == appeal_id)
    )
    if appeal is None:
        raise NotFound(f"no appeal {appeal_id}")
    try:
        get_violation(session, principal, appeal.violation_id)  # visible as its violation is
    except NotFound:
        raise NotFound(f"no appeal {appeal_id}") from None
    return appeal


def decide_appeal(
    session: Session,
    principal: Principal,
    cmd: DecideAppeal,
    *,
    policies: PolicySet,
    now: dt.datetime,
    request_id: str | None = None,
) -> Appeal:
    """Decide an open appeal once: upheld changes nothing; amended and revoked reverse the decision
    in the ledger (and amended records the new points), then everything derived is recomputed."""
    require(principal, "appeals:decide")
    appeal = get_appeal(session, principal, cmd.appeal_id)
    practitioner = lock_owner(session, appeal)
    if cmd.version is not None or cmd.if_match is not None:
        check_version(
            appeal.version, cmd.version if cmd.version is not None else appeal.version, cmd.if_match
        )
    if appeal.status != "open":
        raise WorkflowConflict(
            f"the appeal was already decided: {appeal.status}", current_status=appeal.status
        )
    violation = decision_of(session, appeal.violation_id).violation
    entry = live_decision_entry(violation)
    if cmd.outcome in APPEAL_OUTCOMES and entry is None:
        raise WorkflowConflict(f"decision {violation.id} has been revoked")
    _check_outcome(cmd, violation, entry, policies)
    assert entry is not None  # _check_outcome refused every other outcome
    _write_ledger(session, principal, appeal, cmd, entry, decided_on=violation.decided_on, now=now)
    appeal.status = cmd.outcome
    appeal.outcome_points = cmd.points
    appeal.outcome_reason = cmd.reason
    appeal.decided_on = local_date(now)
    appeal.decided_at = now
    appeal.decided_by = principal.actor
    session.flush()
    _emit(session, appeal, violation, practitioner, f"appeal.{cmd.outcome}", now=now)
    if cmd.outcome in ("amended", "revoked"):
        events.emit(
            session,
            f"violation.{cmd.outcome}",
            data={
                "violation_id": violation.id,
                "case_ref": violation.case_ref,
                "practitioner_code": practitioner.code,
                "points": cmd.points if cmd.outcome == "amended" else 0,
                "previous_points": entry.points,
                "appeal_id": appeal.id,
                "link": f"/v1/violations/{violation.id}",
            },
            now=now,
            practitioner_id=practitioner.id,
            practitioner_code=practitioner.code,
            institution_id=violation.institution_id,
        )
    recompute(session, practitioner, policies=policies, now=now)
    record_audit(
        session,
        principal,
        action=f"appeal.{cmd.outcome}",
        object_type="appeal",
        object_id=appeal.id,
        detail={"violation_id": violation.id, "points": cmd.points, "reason": cmd.reason},
        now=now,
        request_id=request_id,
    )
    return appeal


def _check_outcome(
    cmd: DecideAppeal, violation: Violation, entry: LedgerEntry | None, policies: PolicySet
) -> None:
    allowed = (0, 0)
    if cmd.outcome == "amended":
        policy = policies.get(violation.profile_id)
        ranges = [policy.allowed_points(violation.behaviour_code, a) for a in (None, *ADJUSTMENTS)]
        allowed = (min(r[0] for r in ranges), max(r[1] for r in ranges))
    problem = outcome_problem(
        cmd.outcome,
        cmd.points,
        behaviour=violation.behaviour_code,
        current_points=entry.points if entry is not None else 0,
        allowed=allowed,
    )
    if problem is not None:
        raise RuleViolation(problem.message, rule=problem.rule, field=problem.field)


def _write_ledger(
    session: Session,
    principal: Principal,
    appeal: Appeal,
    cmd: DecideAppeal,
    entry: LedgerEntry,
    *,
    decided_on: dt.date,
    now: dt.datetime,
) -> None:
    """An amendment or revocation never edits the decision: it reverses its entry, and an amendment
    records the new points as a new decision entry (rule 24)."""
    if cmd.outcome not in ("amended", "revoked"):
        return
    common = {
        "practitioner_id": entry.practitioner_id,
        "score_year": entry.score_year,
        "violation_id": entry.violation_id,
        "profile_id": entry.profile_id,
        "recorded_at": now,
        "recorded_by": principal.actor,
    }
    reversal = LedgerEntry(
        kind="reversal",
        effective_on=local_date(now),
        points=-entry.points,
        reverses_entry_id=entry.id,
        reason=f"appeal {appeal.id} {cmd.outcome}: {cmd.reason}",
        **common,
    )
    session.add(reversal)
    session.flush()
    appeal.reversal_entry_id = reversal.id
    if cmd.outcome == "amended":
        amended = LedgerEntry(
            kind="decision",
            # the amended points keep the original decision's date, so the score year is unchanged
            effective_on=decided_on,
            points=cmd.points,
            reason=f"appeal {appeal.id} amended: {cmd.reason}",
            **common,
        )
        session.add(amended)
        session.flush()
        appeal.amended_entry_id = amended.id
