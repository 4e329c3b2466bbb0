"""Scoring decisions (docs/rules.md §2): recorded once, counted once, outcomes recomputed from the ledger."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from ..persistence import queries
from ..persistence.models import Institution, LedgerEntry, Measure, Practitioner, Violation
from ..rules import standing as rules
from ..rules.calendar import local_date, score_year
from ..rules.decisions import registration_problem, score_decision
from ..rules.policy import Policy, PolicyError, PolicySet
from . import events
from .access import Principal, require, sees
from .audit import digest, record_audit
from .errors import DuplicateCase, NotFound, RuleViolation
from .standing import Sanction, Standing, sanction_of, standing_of
from .state import recompute, stored_state


@dataclass(frozen=True)
class RecordViolation:
    case_ref: str
    practitioner_code: str
    institution_code: str
    behaviour_code: str
    responsibility: str
    occurred_on: dt.date
    decided_on: dt.date
    points: int | None = None
    adjustment: str | None = None
    adjustment_reason: str | None = None
    description: str | None = None
    evidence_refs: tuple[str, ...] = field(default_factory=tuple)

    def fingerprint(self) -> str:
        """Same case_ref + same content is a replay; the content is the request as posted."""
        # the fields one by one: asdict's deep copy took most of an import's time spent here
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["evidence_refs"] = list(self.evidence_refs)
        return digest(data)

    def score(self, policies: PolicySet, *, region_code: str, today: dt.date) -> tuple[Policy, int]:
        """The profile in force where the case arose and the points (rules.decisions: rules 4, 6–8,
        27); raises PolicyError with the rule it breaks. The API and the import score alike."""
        return score_decision(
            policies,
            region_code=region_code,
            behaviour_code=self.behaviour_code,
            responsibility=self.responsibility,
            occurred_on=self.occurred_on,
            decided_on=self.decided_on,
            points=self.points,
            adjustment=self.adjustment,
            adjustment_reason=self.adjustment_reason,
            today=today,
        )


@dataclass(frozen=True)
class Decision:
    """A decision with where it stands in the ledger: effective, amended (current_points) or revoked."""

    violation: Violation
    state: str
    current_points: int


@dataclass(frozen=True)
class Triggered:
    """What one decision set off: its measure task or its sanction (rule 12: only the more severe)."""

    measures: Sequence[Measure]
    sanctions: Sequence[Sanction]


@dataclass(frozen=True)
class Recorded(Decision):
    created: bool  # False: the same case posted again, answered with the original
    standing: Standing
    triggered: Triggered


def record_violation(
    session: Session,
    principal: Principal,
    cmd: RecordViolation,
    *,
    policies: PolicySet,
    now: dt.datetime,
    request_id: str | None = None,
) -> Recorded:
    """Record a decision under the person's lock, so that each threshold is crossed once, in order.

    The same case_ref with the same content is answered with the original (counted once); with
    other content it is a 409.
    """
    require(principal, "violations:write")
    return _record(session, principal, cmd, policies=policies, now=now, request_id=request_id)


def preview_violation(
    session: Session, principal: Principal, cmd: RecordViolation, *, policies: PolicySet, now: dt.datetime
) -> Recorded:
    """What recording this decision would bring, recording nothing.

    It runs the very code of a real post inside a savepoint that is then rolled back, so the
    preview cannot drift from the real path: the same checks, the same 422s, the same standing and
    triggered measures and sanctions. Rows made inside are expunged with their values intact; the
    ids they were given are not real (a sequence does not roll back), so the answer names none.
    """
    require(principal, "violations:preview")
    savepoint = session.begin_nested()
    try:
        recorded = _record(session, principal, cmd, policies=policies, now=now, request_id=None)
    finally:
        savepoint.rollback()
    if not recorded.created:
        return recorded  # the case is already recorded: a post would answer the original
    return _without_ids(recorded)


def _without_ids(recorded: Recorded) -> Recorded:
    """A preview's new decision and new tasks have no id yet: they name none, and neither do the
    sanctions the new decision would impose."""
    previewed = recorded.violation.id
    recorded.violation.id = None  # type: ignore[assignment]
    for measure in recorded.triggered.measures:
        measure.id = None  # type: ignore[assignment]
        measure.violation_id = None  # type: ignore[assignment]

    def unnamed(sanctions: Sequence[Sanction]) -> list[Sanction]:
        return [replace(s, violation_id=None) if s.violation_id == previewed else s for s in sanctions]

    standing = replace(recorded.standing, sanctions=unnamed(recorded.standing.sanctions))
    triggered = Triggered(recorded.triggered.measures, unnamed(recorded.triggered.sanctions))
    return replace(recorded, standing=standing, triggered=triggered)


def _record(
    session: Session,
    principal: Principal,
    cmd: RecordViolation,
    *,
    policies: PolicySet,
    now: dt.datetime,
    request_id: str | None,
) -> Recorded:
    person, institution = _lock_parties(session, cmd)
    existing = session.scalar(select(Violation).where(Violation.case_ref == cmd.case_ref))
    if existing is not None:
        return _replay(session, principal, existing, cmd, now=now)
    policy, points = _score(cmd, institution, policies, today=local_date(now))
    _require_registered(session, person, cmd)
    violation = Violation(
        case_ref=cmd.case_ref,
        practitioner=person,
        institution=institution,
        behaviour_code=cmd.behaviour_code,
        responsibility=cmd.responsibility,
        adjustment=cmd.adjustment,
        adjustment_reason=cmd.adjustment_reason,
        points=points,
        occurred_on=cmd.occurred_on,
        decided_on=cmd.decided_on,
        score_year=score_year(cmd.decided_on),
        profile_id=policy.id,
        description=cmd.description,
        evidence_refs=list(cmd.evidence_refs),
        fingerprint=cmd.fingerprint(),
        created_at=now,
        created_by=principal.actor,
    )
    entry = LedgerEntry(
        practitioner_id=person.id,
        kind="decision",
        score_year=violation.score_year,
        effective_on=cmd.decided_on,
        points=points,
        violation=violation,
        profile_id=policy.id,
        recorded_at=now,
        recorded_by=principal.actor,
    )
    session.add_all([violation, entry])
    session.flush()  # the decision's id goes into its event and audit row
    _announce(session, principal, violation, now=now, request_id=request_id)
    recomputed = recompute(session, person, policies=policies, now=now)
    decision = Decision(violation, "effective", points)
    return _recorded(session, principal, decision, recomputed.state, recomputed.measures, True, now=now)


def _lock_parties(session: Session, cmd: RecordViolation) -> tuple[Practitioner, Institution]:
    institution = queries.institution_by_code(session, cmd.institution_code)
    if institution is None:
        raise RuleViolation(
            f"no institution {cmd.institution_code}", rule="docs/api.md Violations", field="institution_code"
        )
    person = queries.lock_practitioner(session, cmd.practitioner_code)
    if person is None:
        raise RuleViolation(
            f"no practitioner {cmd.practitioner_code}",
            rule="docs/api.md Violations",
            field="practitioner_code",
        )
    return person, institution


def _score(
    cmd: RecordViolation, institution: Institution, policies: PolicySet, *, today: dt.date
) -> tuple[Policy, int]:
    """The profile in force and the points, after the checks of rules 6 and 8 (rules.decisions)."""
    try:
        return cmd.score(policies, region_code=institution.region_code, today=today)
    except PolicyError as exc:
        raise RuleViolation(str(exc), rule=exc.rule, field=exc.field) from None


def _require_registered(session: Session, person: Practitioner, cmd: RecordViolation) -> None:
    """Rules 4 and 6: the person was registered at the institution on the day of the conduct."""
    problem = registration_problem(
        stored_state(queries.snapshot_of(session, person.id)).registrations,
        practitioner_code=person.code,
        institution_code=cmd.institution_code,
        occurred_on=cmd.occurred_on,
    )
    if problem is not None:
        raise RuleViolation(str(problem), rule=problem.rule, field=problem.field)


def recorded_facts(
    *,
    case_ref: str,
    practitioner_code: str,
    institution_code: str,
    behaviour_code: str,
    points: int,
    decided_on: dt.date,
) -> dict[str, Any]:
    """What the feed event and the audit row of a new decision say of it."""
    return {
        "case_ref": case_ref,
        "practitioner_code": practitioner_code,
        "institution_code": institution_code,
        "behaviour_code": behaviour_code,
        "points": points,
        "decided_on": decided_on.isoformat(),
    }


def recorded_event_data(violation_id: int, facts: dict[str, Any], *, score_year: int) -> dict[str, Any]:
    """The payload of a `violation.recorded` event, posted or imported alike."""
    return {
        "violation_id": violation_id,
        **facts,
        "score_year": score_year,
        "link": f"/v1/violations/{violation_id}",
    }


def _announce(
    session: Session, principal: Principal, violation: Violation, *, now: dt.datetime, request_id: str | None
) -> None:
    """The feed event and the audit row of a new decision, with the same facts."""
    facts = recorded_facts(
        case_ref=violation.case_ref,
        practitioner_code=violation.practitioner.code,
        institution_code=violation.institution.code,
        behaviour_code=violation.behaviour_code,
        points=violation.points,
        decided_on=violation.decided_on,
    )
    events.emit(
        session,
        "violation.recorded",
        data=recorded_event_data(violation.id, facts, score_year=violation.score_year),
        now=now,
        practitioner_id=violation.practitioner_id,
        practitioner_code=violation.practitioner.code,
        institution_id=violation.institution_id,
    )
    record_audit(
        session,
        principal,
        action="violation.recorded",
        object_type="violation",
        object_id=violation.id,
        detail={**facts, "profile": violation.profile_id},
        now=now,
        request_id=request_id,
    )


def different_content(case_ref: str) -> str:
    """Why a case_ref already recorded with other content is refused (a 409; a bad row of an import)."""
    return f"case {case_ref} is already recorded with different content"


def _replay(
    session: Session, principal: Principal, existing: Violation, cmd: RecordViolation, *, now: dt.datetime
) -> Recorded:
    if existing.fingerprint != cmd.fingerprint():
        raise DuplicateCase(
            different_content(cmd.case_ref),
            violation_id=existing.id,
            location=f"/v1/violations/{existing.id}",
        )
    decision = decision_of(session, existing.id)
    state = stored_state(queries.snapshot_of(session, existing.practitioner_id))
    return _recorded(session, principal, decision, state, None, False, now=now)


def _recorded(
    session: Session,
    principal: Principal,
    decision: Decision,
    state: rules.PersonState,
    measures: Sequence[Measure] | None,
    created: bool,
    *,
    now: dt.datetime,
) -> Recorded:
    violation = decision.violation
    standing = standing_of(
        session,
        principal,
        violation.practitioner.code,
        violation.practitioner_id,
        state,
        year=violation.score_year,
        now=now,
        measures=measures,
    )
    triggered = Triggered(
        measures=[m for m in standing.measures if m.violation_id == violation.id],
        sanctions=[
            sanction_of(s)
            for s in state.triggered_by(violation.id)
            if isinstance(s, (rules.Suspension, rules.Termination))
        ],
    )
    return Recorded(violation, decision.state, decision.current_points, created, standing, triggered)


def decision_of(session: Session, violation_id: int) -> Decision:
    """The decision with its parties and its ledger entries loaded, and where it stands (rule 24)."""
    violation = session.scalar(
        select(Violation)
        .options(
            joinedload(Violation.practitioner),
            joinedload(Violation.institution),
            selectinload(Violation.entries),
        )
        .where(Violation.id == violation_id)
        .execution_options(populate_existing=True)
    )
    if violation is None:
        raise NotFound(f"no violation {violation_id}")
    return decision_from(violation)


def decision_from(violation: Violation) -> Decision:
    """Where a decision stands (rule 24), from its ledger entries, which must be loaded (decision_of,
    or a list that loads them with it)."""
    live = live_decision_entry(violation)
    if live is None:
        return Decision(violation, "revoked", 0)
    decided = [e for e in violation.entries if e.kind == "decision"]
    return Decision(violation, "amended" if len(decided) > 1 else "effective", live.points)


def get_violation(session: Session, principal: Principal, violation_id: int) -> Decision:
    require(principal, "violations:read")
    decision = decision_of(session, violation_id)
    violation = decision.violation
    if not sees(principal, practitioner=violation.practitioner_id, institution=violation.institution_id):
        raise NotFound(f"no violation {violation_id}")
    return decision


def live_decision_entry(violation: Violation) -> LedgerEntry | None:
    """The ledger entry that now carries the decision's points (None once revoked); needs the
    violation's entries loaded (decision_of)."""
    reversed_ids = {e.reverses_entry_id for e in violation.entries if e.kind == "reversal"}
    live = [e for e in violation.entries if e.kind == "decision" and e.id not in reversed_ids]
    return live[-1] if live else None
