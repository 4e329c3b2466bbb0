"""The materialised state: recomputed from the ledger under the person's lock, read in one lookup."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..persistence import queries
from ..persistence.models import Measure, Practitioner, PractitionerState, Violation
from ..rules import standing as rules
from ..rules.calendar import local_date
from ..rules.policy import PolicySet
from . import events

EMPTY_STATE = rules.PersonState()


def derive_from_ledger(
    session: Session, practitioner: Practitioner, *, policies: PolicySet
) -> rules.PersonState:
    """The rules applied to the person's whole ledger and registrations, as stored now."""
    return _derive(session, practitioner, policies)[0]


def _derive(
    session: Session, practitioner: Practitioner, policies: PolicySet
) -> tuple[rules.PersonState, int]:
    """The derived state and the number of ledger entries it was derived from (the snapshot version)."""
    entries = queries.ledger_rows(session, practitioner.id)
    state = rules.derive_state(
        decisions=[
            rules.Decision(e.id, e.violation_id, e.effective_on, e.points, e.profile_id)
            for e in entries
            if e.kind == "decision"
        ],
        reversals=[
            rules.Reversal(e.id, e.reverses_entry_id, e.effective_on) for e in entries if e.kind == "reversal"
        ],
        repairs=[
            rules.Repair(e.id, e.repair_id, e.effective_on, e.activity, e.profile_id)
            for e in entries
            if e.kind == "repair"
        ],
        registrations=[
            rules.Registration(*row) for row in queries.registration_spans(session, practitioner.id)
        ],
        policies=policies.profiles,
    )
    return state, len(entries)


@dataclass(frozen=True)
class Recomputed:
    state: rules.PersonState
    # the person's measures that are not cancelled, after the sync: callers build views from
    # these instead of reading them again
    measures: Sequence[Measure]


def recompute_state(
    session: Session, practitioner: Practitioner, *, policies: PolicySet, now: dt.datetime
) -> rules.PersonState:
    return recompute(session, practitioner, policies=policies, now=now).state


def recompute(
    session: Session,
    practitioner: Practitioner,
    *,
    policies: PolicySet,
    now: dt.datetime,
    snapshot: PractitionerState | None = None,
) -> Recomputed:
    """Derive the person's state from the whole ledger and store it as the snapshot.

    Called by every write for the person, after its rows are flushed and while the lock is held,
    so the snapshot is always the rules applied to the ledger as committed. A caller that has
    already read the snapshot under the lock passes it in.
    """
    state, version = _derive(session, practitioner, policies)
    if snapshot is None:
        snapshot = session.get(PractitionerState, practitioner.id)
    mapping = rules.state_to_mapping(state)
    if snapshot is None:
        snapshot = PractitionerState(
            practitioner_id=practitioner.id,
            practitioner_code=practitioner.code,
            ledger_version=version,
            state=mapping,
            updated_at=now,
            announced_status="not_registered",
        )
        session.add(snapshot)
        previous = EMPTY_STATE
    else:
        previous = rules.state_from_mapping(snapshot.state)
        snapshot.ledger_version = version
        snapshot.state = mapping
        snapshot.updated_at = now
    _announce_ended_registrations(session, practitioner, previous, state, now=now)
    announce(session, practitioner, snapshot, state, today=local_date(now), now=now, sweep=False)
    return Recomputed(state, _sync_measures(session, practitioner, state, now=now))


def announce(
    session: Session,
    practitioner: Practitioner,
    snapshot: PractitionerState,
    state: rules.PersonState,
    *,
    today: dt.date,
    now: dt.datetime,
    sweep: bool,
) -> bool:
    """Tell the feed when the person's status today differs from what it last said.

    A write announces at once; the transitions sweep announces what time alone changed, under a
    dedupe key so a rerun of the same day says nothing twice. Returns whether it announced.
    """
    answer = rules.eligibility_on(state, today)
    kind = rules.transition_event(snapshot.announced_status, answer.status)
    announced = False
    if kind is not None:
        announced = events.emit(
            session,
            kind,
            data={
                "practitioner_code": practitioner.code,
                "status": answer.status,
                "previous_status": snapshot.announced_status,
                "on": today.isoformat(),
                "until": answer.until.isoformat() if answer.until else None,
                "barred_until": answer.barred_until.isoformat() if answer.barred_until else None,
                "reason": answer.reason,
            },
            now=now,
            practitioner_id=practitioner.id,
            practitioner_code=practitioner.code,
            dedupe_key=f"{kind}:{practitioner.code}:{today.isoformat()}" if sweep else None,
        )
    snapshot.announced_status = answer.status
    snapshot.next_transition_on = rules.next_change_after(state, today)
    return announced


def _announce_ended_registrations(
    session: Session,
    practitioner: Practitioner,
    previous: rules.PersonState,
    state: rules.PersonState,
    *,
    now,
) -> None:
    """A termination ends registrations without anyone writing to them: say so (rule 17)."""
    before = {s.registration_id: s for s in previous.registrations}
    for span in state.registrations:
        if span.ended_by == "termination" and before.get(span.registration_id) != span:
            events.emit(
                session,
                "registration.ended",
                data={
                    "practitioner_code": practitioner.code,
                    "institution_code": span.institution_code,
                    "registration_id": span.registration_id,
                    "end_date": span.end.isoformat() if span.end else None,
                    "reason": "termination",
                    "violation_id": span.termination_violation_id,
                },
                now=now,
                practitioner_id=practitioner.id,
                practitioner_code=practitioner.code,
            )


def _sync_measures(
    session: Session, practitioner: Practitioner, state: rules.PersonState, *, now: dt.datetime
) -> list[Measure]:
    """Measures are tasks: new triggers become pending tasks; vanished causes are cancelled, not deleted.

    Returns the measures left in force, in (triggered_on, id) order.
    """
    stored = session.scalars(
        select(Measure).where(Measure.practitioner_id == practitioner.id, Measure.state != "cancelled")
    ).all()
    wanted = {(m.year, m.kind, m.violation_id): m for m in state.measures}
    have = {(m.year, m.kind, m.violation_id): m for m in stored}
    live = []
    for key, measure in have.items():
        if key in wanted:
            live.append(measure)
        else:
            measure.state = "cancelled"
            measure.cancelled_at = now
    missing = [m for key, m in wanted.items() if key not in have]
    if not missing:
        return _in_order(live)
    institutions = dict(
        session.execute(
            select(Violation.id, Violation.institution_id).where(
                Violation.id.in_([m.violation_id for m in missing])
            )
        ).all()
    )
    for m in missing:
        measure = Measure(
            practitioner_id=practitioner.id,
            institution_id=institutions[m.violation_id],
            violation_id=m.violation_id,
            year=m.year,
            kind=m.kind,
            triggered_on=m.triggered_on,
            state="pending",
            created_at=now,
        )
        session.add(measure)
        session.flush()  # the measure's id goes into the event and the caller's `triggered`
        live.append(measure)
        events.emit(
            session,
            "measure.triggered",
            data={
                "measure_id": measure.id,
                "kind": m.kind,
                "practitioner_code": practitioner.code,
                "year": m.year,
                "triggered_on": m.triggered_on.isoformat(),
                "violation_id": m.violation_id,
            },
            now=now,
            practitioner_id=practitioner.id,
            practitioner_code=practitioner.code,
            institution_id=measure.institution_id,
        )
    return _in_order(live)


def _in_order(measures: list[Measure]) -> list[Measure]:
    return sorted(measures, key=lambda m: (m.triggered_on, m.id))


def stored_state(snapshot: PractitionerState | None) -> rules.PersonState:
    return rules.state_from_mapping(snapshot.state) if snapshot is not None else EMPTY_STATE


def status_today(state: rules.PersonState, now: dt.datetime) -> rules.Eligibility:
    return rules.eligibility_on(state, local_date(now))


def standing_view(
    session: Session,
    practitioner: Practitioner,
    state: rules.PersonState,
    *,
    year: int,
    now: dt.datetime,
    measures: Sequence[Measure] | None = None,
) -> dict[str, Any]:
    """The <Standing> of api.md for one score year, with status as of today.

    `measures`: the person's live measures when the caller already holds them (a write).
    """
    y = state.year(year)
    if measures is None:
        measures = session.scalars(
            select(Measure)
            .where(
                Measure.practitioner_id == practitioner.id, Measure.year == year, Measure.state != "cancelled"
            )
            .order_by(Measure.triggered_on, Measure.id)
        ).all()
    else:
        measures = [m for m in measures if m.year == year]
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
