"""The materialised state: recomputed from the ledger under the person's lock, read in one lookup."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..persistence import queries
from ..persistence.models import Measure, Practitioner, PractitionerState, Violation
from ..rules import standing as rules
from ..rules.calendar import local_date
from ..rules.policy import PolicySet

EMPTY_STATE = rules.PersonState()


def derive_from_ledger(
    session: Session, practitioner: Practitioner, *, policies: PolicySet
) -> rules.PersonState:
    """The rules applied to the person's whole ledger and registrations, as stored now."""
    entries = queries.ledger_for(session, practitioner.id)
    return rules.derive_state(
        decisions=[
            rules.Decision(e.id, e.violation_id, e.effective_on, e.points, e.profile_id)  # type: ignore[arg-type]
            for e in entries
            if e.kind == "decision"
        ],
        reversals=[
            rules.Reversal(e.id, e.reverses_entry_id, e.effective_on)  # type: ignore[arg-type]
            for e in entries
            if e.kind == "reversal"
        ],
        repairs=[
            rules.Repair(e.id, e.repair_id, e.effective_on, e.activity, e.profile_id)  # type: ignore[arg-type]
            for e in entries
            if e.kind == "repair"
        ],
        registrations=[
            rules.Registration(r.id, code, r.start_date, r.end_date)
            for r, code in queries.registrations_for(session, practitioner.id)
        ],
        policies=policies.profiles,
    )


def recompute_state(
    session: Session, practitioner: Practitioner, *, policies: PolicySet, now: dt.datetime
) -> rules.PersonState:
    """Derive the person's state from the whole ledger and store it as the snapshot.

    Called by every write for the person, after its rows are flushed and while the lock is held,
    so the snapshot is always the rules applied to the ledger as committed.
    """
    state = derive_from_ledger(session, practitioner, policies=policies)
    version = queries.ledger_size(session, practitioner.id)
    snapshot = session.get(PractitionerState, practitioner.id)
    mapping = rules.state_to_mapping(state)
    if snapshot is None:
        session.add(
            PractitionerState(
                practitioner_id=practitioner.id,
                practitioner_code=practitioner.code,
                ledger_version=version,
                state=mapping,
                updated_at=now,
            )
        )
    else:
        snapshot.ledger_version = version
        snapshot.state = mapping
        snapshot.updated_at = now
    _sync_measures(session, practitioner, state, now=now)
    return state


def _sync_measures(
    session: Session, practitioner: Practitioner, state: rules.PersonState, *, now: dt.datetime
) -> None:
    """Measures are tasks: new triggers become pending tasks; vanished causes are cancelled, not deleted."""
    stored = session.scalars(
        select(Measure).where(Measure.practitioner_id == practitioner.id, Measure.state != "cancelled")
    ).all()
    wanted = {(m.year, m.kind, m.violation_id): m for m in state.measures}
    have = {(m.year, m.kind, m.violation_id): m for m in stored}
    for key, measure in have.items():
        if key not in wanted:
            measure.state = "cancelled"
            measure.cancelled_at = now
    missing = [m for key, m in wanted.items() if key not in have]
    if not missing:
        return
    institutions = dict(
        session.execute(
            select(Violation.id, Violation.institution_id).where(
                Violation.id.in_([m.violation_id for m in missing])
            )
        ).all()
    )
    for m in missing:
        session.add(
            Measure(
                practitioner_id=practitioner.id,
                institution_id=institutions[m.violation_id],
                violation_id=m.violation_id,
                year=m.year,
                kind=m.kind,
                triggered_on=m.triggered_on,
                state="pending",
                created_at=now,
            )
        )
    session.flush()  # ids for the measures the caller returns as `triggered`


def stored_state(snapshot: PractitionerState | None) -> rules.PersonState:
    return rules.state_from_mapping(snapshot.state) if snapshot is not None else EMPTY_STATE


def status_today(state: rules.PersonState, now: dt.datetime) -> rules.Eligibility:
    return rules.eligibility_on(state, local_date(now))


def standing_view(
    session: Session, practitioner: Practitioner, state: rules.PersonState, *, year: int, now: dt.datetime
) -> dict[str, Any]:
    """The <Standing> of api.md for one score year, with status as of today."""
    y = state.year(year)
    measures = session.scalars(
        select(Measure)
        .where(Measure.practitioner_id == practitioner.id, Measure.year == year, Measure.state != "cancelled")
        .order_by(Measure.triggered_on, Measure.id)
    ).all()
    today = status_today(state, now)
    return {
        "practitioner_code": practitioner.code,
        "year": year,
        "points_total": y.points_total,
        "points_recorded": y.points_recorded,
        "points_repaired": y.points_repaired,
        "max_single_event": y.max_single_event,
        "tier": y.tier,
        "status": today.status,
        "status_until": today.until,
        "barred_until": state.barred_until,
        "measures": [measure_view(m, practitioner.code) for m in measures],
        "sanctions": [sanction_view(s) for s in state.suspensions if s.year == year]
        + [sanction_view(t) for t in state.terminations if t.year == year],
    }


def measure_view(m: Measure, practitioner_code: str) -> dict[str, Any]:
    return {
        "id": m.id,
        "practitioner_code": practitioner_code,
        "kind": m.kind,
        "year": m.year,
        "triggered_on": m.triggered_on,
        "violation_id": m.violation_id,
        "state": m.state,
        "completed_on": m.completed_on,
        "note": m.note,
    }


def sanction_view(s: rules.Suspension | rules.Termination) -> dict[str, Any]:
    if isinstance(s, rules.Suspension):
        return {
            "kind": "suspension",
            "start": s.start,
            "end": s.end,
            "months": s.months,
            "basis": s.basis,
            "violation_id": s.violation_id,
            "shortened_by_months": s.shortened_by_months,
        }
    return {
        "kind": "termination",
        "start": s.start,
        "barred_until": s.barred_until,
        "bar_years": s.bar_years,
        "basis": s.basis,
        "violation_id": s.violation_id,
        "shortened_by_months": s.shortened_by_months,
    }


def eligibility_view(code: str, e: rules.Eligibility) -> dict[str, Any]:
    return {
        "practitioner_code": code,
        "at": e.at,
        "eligible": e.eligible,
        "status": e.status,
        "reason": e.reason,
        "until": e.until,
        "barred_until": e.barred_until,
        "emergency_care_settles": e.emergency_care_settles,
    }
