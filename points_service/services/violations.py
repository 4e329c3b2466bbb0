"""Scoring decisions (docs/rules.md §2): recorded once, counted once, outcomes recomputed from the ledger."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..persistence import queries
from ..persistence.models import Institution, LedgerEntry, Measure, Practitioner, Violation
from ..persistence.writes import Writes
from ..rules import standing as rules
from ..rules.calendar import local_date, score_year
from ..rules.policy import PolicyError, PolicySet
from . import events
from .access import Principal, require, sees
from .audit import digest, record_audit
from .errors import DuplicateCase, NotFound, RuleViolation
from .state import MeasureRow, PersonRef, measure_view, recompute, sanction_view, stored_state


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
        data = asdict(self)
        data["evidence_refs"] = list(self.evidence_refs)
        return digest(data)


@dataclass(frozen=True)
class RecordedViolation:
    violation: Violation
    practitioner: PersonRef
    institution_code: str
    state: rules.PersonState
    created: bool
    # the person's live measures after a new decision, when the write read them (None: read
    # them when needed)
    measures: Sequence[MeasureRow] | None = None


_VIOLATIONS = Violation.__table__
_LEDGER_ENTRIES = LedgerEntry.__table__


def record_violation(
    session: Session,
    principal: Principal,
    cmd: RecordViolation,
    *,
    policies: PolicySet,
    now: dt.datetime,
    request_id: str | None = None,
) -> RecordedViolation:
    """Record a decision: the hottest write, so a few table statements, each built once.

    Every write for a person is serialised by the lock taken first, so each threshold is crossed
    once, in order; the snapshot and the case_ref are read after it, so they are current.
    """
    require(principal, "violations:write")
    person = queries.lock_for_decision(session, cmd.practitioner_code, cmd.institution_code)
    if person is None or person.institution_id is None:
        if person is None and queries.institution_by_code(session, cmd.institution_code) is not None:
            raise RuleViolation(
                f"no practitioner {cmd.practitioner_code}",
                rule="docs/api.md Violations",
                field="practitioner_code",
            )
        raise RuleViolation(
            f"no institution {cmd.institution_code}", rule="docs/api.md Violations", field="institution_code"
        )
    fingerprint = cmd.fingerprint()
    context = queries.decision_context(session, person.id, person.code, cmd.case_ref)
    if context.existing_id is not None:
        if context.existing_fingerprint != fingerprint:
            raise DuplicateCase(
                f"case {cmd.case_ref} is already recorded with different content",
                violation_id=context.existing_id,
                location=f"/v1/violations/{context.existing_id}",
            )
        existing = session.get(Violation, context.existing_id)
        assert existing is not None
        owner = session.get(Practitioner, existing.practitioner_id)
        assert owner is not None
        return RecordedViolation(
            existing,
            owner,
            cmd.institution_code,
            stored_state(queries.state_by_code(session, owner.code)),
            False,
        )

    today = local_date(now)
    if cmd.decided_on > today:
        raise RuleViolation(
            f"decided_on {cmd.decided_on.isoformat()} is in the future (today is {today.isoformat()})",
            rule="docs/rules.md rule 6",
            field="decided_on",
        )
    if cmd.occurred_on > cmd.decided_on:
        raise RuleViolation(
            "occurred_on must not be after decided_on", rule="docs/rules.md rule 6", field="occurred_on"
        )
    if cmd.adjustment is not None and not (cmd.adjustment_reason or "").strip():
        raise RuleViolation(
            "an adjusted decision needs an adjustment_reason",
            rule="docs/rules.md rule 8",
            field="adjustment_reason",
        )
    if cmd.adjustment is None and cmd.adjustment_reason:
        raise RuleViolation(
            "adjustment_reason is only for an adjusted decision",
            rule="docs/rules.md rule 8",
            field="adjustment_reason",
        )
    try:
        policy = policies.profile_for(person.region_code, cmd.decided_on)
        points = policy.points_for(
            cmd.behaviour_code, cmd.responsibility, points=cmd.points, adjustment=cmd.adjustment
        )
    except PolicyError as exc:
        raise RuleViolation(str(exc), rule=exc.rule, field=exc.field) from None

    if not any(
        s.institution_code == cmd.institution_code and s.covers(cmd.occurred_on)
        for s in stored_state(context.snapshot).registrations
    ):
        raise RuleViolation(
            f"practitioner {person.code} was not registered at {cmd.institution_code} on "
            f"{cmd.occurred_on.isoformat()}",
            rule="docs/rules.md rules 4 and 6",
            field="occurred_on",
        )

    violation_id = context.violation_id
    violation = Violation(
        id=violation_id,
        case_ref=cmd.case_ref,
        practitioner_id=person.id,
        institution_id=person.institution_id,
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
        fingerprint=fingerprint,
        created_at=now,
        created_by=principal.actor,
    )  # the row as written, for the response; the ORM never sees it
    entry = queries.LedgerRow(
        context.ledger_entry_id, "decision", violation_id, None, None, None, cmd.decided_on, points, policy.id
    )
    # every row of the decision goes in one statement at the end (persistence.writes)
    writes = Writes()
    writes.insert(_VIOLATIONS, {c.key: getattr(violation, c.key) for c in _VIOLATIONS.columns})
    writes.insert(
        _LEDGER_ENTRIES,
        {
            "id": entry.id,
            "practitioner_id": person.id,
            "kind": entry.kind,
            "score_year": violation.score_year,
            "effective_on": entry.effective_on,
            "points": points,
            "violation_id": violation_id,
            "profile_id": policy.id,
            "recorded_at": now,
            "recorded_by": principal.actor,
        },
    )
    events.emit(
        session,
        "violation.recorded",
        data={
            "violation_id": violation_id,
            "case_ref": cmd.case_ref,
            "practitioner_code": person.code,
            "institution_code": cmd.institution_code,
            "behaviour_code": cmd.behaviour_code,
            "points": points,
            "decided_on": cmd.decided_on.isoformat(),
            "score_year": violation.score_year,
            "link": f"/v1/violations/{violation_id}",
        },
        now=now,
        practitioner_id=person.id,
        practitioner_code=person.code,
        institution_id=person.institution_id,
        writes=writes,
    )
    recomputed = recompute(
        session,
        person,
        policies=policies,
        now=now,
        context=(context.snapshot, context.inputs.with_entry(entry)),
        writes=writes,
    )
    record_audit(
        session,
        principal,
        action="violation.recorded",
        object_type="violation",
        object_id=violation_id,
        detail={
            "case_ref": cmd.case_ref,
            "practitioner_code": person.code,
            "institution_code": cmd.institution_code,
            "behaviour_code": cmd.behaviour_code,
            "points": points,
            "decided_on": cmd.decided_on.isoformat(),
            "profile": policy.id,
        },
        now=now,
        request_id=request_id,
        writes=writes,
    )
    writes.send(session)
    return RecordedViolation(
        violation, person, cmd.institution_code, recomputed.state, True, recomputed.measures
    )


def get_violation(
    session: Session, principal: Principal, violation_id: int
) -> tuple[Violation, Practitioner, str]:
    require(principal, "violations:read")
    violation = session.get(Violation, violation_id)
    if violation is None:
        raise NotFound(f"no violation {violation_id}")
    practitioner = session.get(Practitioner, violation.practitioner_id)
    assert practitioner is not None
    institution_code = institution_code_of(session, violation)
    if not sees(principal, practitioner=violation.practitioner_id, institution=violation.institution_id):
        raise NotFound(f"no violation {violation_id}")
    return violation, practitioner, institution_code


def institution_code_of(session: Session, violation: Violation) -> str:
    code = session.scalar(select(Institution.code).where(Institution.id == violation.institution_id))
    assert code is not None
    return code


def _decision_entries(session: Session, violation: Violation) -> tuple[list[LedgerEntry], set[int]]:
    decisions = list(
        session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.violation_id == violation.id, LedgerEntry.kind == "decision")
            .order_by(LedgerEntry.id)
        )
    )
    reversed_ids = set(
        session.scalars(
            select(LedgerEntry.reverses_entry_id).where(
                LedgerEntry.reverses_entry_id.in_([e.id for e in decisions])
            )
        )
    )
    return decisions, reversed_ids


def live_decision_entry(session: Session, violation: Violation) -> LedgerEntry | None:
    """The ledger entry that currently carries the decision's points (None once revoked)."""
    decisions, reversed_ids = _decision_entries(session, violation)
    live = [e for e in decisions if e.id not in reversed_ids]
    return live[-1] if live else None


def violation_state(session: Session, violation: Violation) -> tuple[str, int]:
    """(effective | amended | revoked, the points in force) from the ledger (rule 24)."""
    decisions, reversed_ids = _decision_entries(session, violation)
    live = [e for e in decisions if e.id not in reversed_ids]
    if not live:
        return "revoked", 0
    return ("amended" if len(decisions) > 1 else "effective"), live[-1].points


def triggered_view(session: Session, recorded: RecordedViolation) -> list[dict[str, Any]]:
    """What this decision set off: the measure task or the sanction (rule 12: the more severe)."""
    out: list[dict[str, Any]] = []
    code = recorded.practitioner.code
    for item in recorded.state.triggered_by(recorded.violation.id):
        if isinstance(item, rules.Measure):
            if recorded.measures is not None:
                row = next(
                    (
                        m
                        for m in recorded.measures
                        if m.violation_id == recorded.violation.id and m.kind == item.kind
                    ),
                    None,
                )
            else:
                row = session.scalars(
                    select(Measure).where(
                        Measure.violation_id == recorded.violation.id,
                        Measure.kind == item.kind,
                        Measure.state != "cancelled",
                    )
                ).first()
            if row is not None:
                out.append({"type": "measure", **measure_view(row, code)})
        else:
            out.append({"type": "sanction", **sanction_view(item)})
    return out
