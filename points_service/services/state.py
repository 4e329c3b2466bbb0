"""The materialised state: recomputed from the ledger under the person's lock, read in one lookup."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.orm import Session

from ..persistence import queries
from ..persistence.models import Measure, PractitionerState, Violation
from ..persistence.writes import Writes
from ..rules import standing as rules
from ..rules.calendar import local_date
from ..rules.policy import PolicySet
from . import events
from .access import Principal, sees

EMPTY_STATE = rules.PersonState()


class PersonRef(Protocol):
    """What the state functions need of a person: a Practitioner, or a row of (id, code)."""

    @property
    def id(self) -> int: ...

    @property
    def code(self) -> str: ...


def derive_from_ledger(
    session: Session, practitioner: PersonRef, *, policies: PolicySet
) -> rules.PersonState:
    """The rules applied to the person's whole ledger and registrations, as stored now."""
    _, inputs = queries.person_context(session, practitioner.id, practitioner.code)
    return derive(inputs, policies)


def derive(inputs: queries.PersonInputs, policies: PolicySet) -> rules.PersonState:
    """The rules applied to a person's ledger and registrations."""
    entries = inputs.ledger
    return rules.derive_state(
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
        registrations=[rules.Registration(*row) for row in inputs.registrations],
        policies=policies.profiles,
    )


@dataclass(frozen=True)
class Recomputed:
    state: rules.PersonState
    # the person's live measure tasks when the recompute read them (it changed them, or the state
    # has none): callers build views from these; None: read them if needed
    measures: Sequence[MeasureRow] | None


@dataclass(frozen=True)
class MeasureRow:
    """A measure task as the views show it: a row read or written by the recompute."""

    id: int
    year: int
    kind: str
    violation_id: int
    institution_id: int
    triggered_on: dt.date
    state: str
    completed_on: dt.date | None = None
    note: str | None = None


def recompute_state(
    session: Session, practitioner: PersonRef, *, policies: PolicySet, now: dt.datetime
) -> rules.PersonState:
    return recompute(session, practitioner, policies=policies, now=now).state


def recompute(
    session: Session,
    practitioner: PersonRef,
    *,
    policies: PolicySet,
    now: dt.datetime,
    context: tuple[queries.Snapshot, queries.PersonInputs] | None = None,
    writes: Writes | None = None,
) -> Recomputed:
    """Derive the person's state from the whole ledger and store it as the snapshot.

    Called by every write for the person, after its rows are written (or queued in `writes`) and
    while the lock is held, so the snapshot is always the rules applied to the ledger as
    committed. A caller that has already read the snapshot and the inputs under the lock passes
    them in (`context`), and one that collects its rows in `writes` sends them itself; otherwise
    this reads in one statement and writes in one more.
    """
    snapshot, inputs = context or queries.person_context(session, practitioner.id, practitioner.code)
    state = derive(inputs, policies)
    own = writes is None
    writes = Writes() if writes is None else writes
    previous = stored_state(snapshot) if snapshot.stored else None
    snapshot.ledger_version = len(inputs.ledger)
    snapshot.state = rules.state_to_mapping(state)
    _announce_ended_registrations(
        session, practitioner, previous or EMPTY_STATE, state, now=now, writes=writes
    )
    announce(
        session, practitioner, snapshot, state, today=local_date(now), now=now, sweep=False, writes=writes
    )
    queries.store_snapshot(session, snapshot, now=now, writes=writes)
    measures = _sync_measures(session, practitioner, previous, state, now=now, writes=writes)
    if own:
        writes.send(session)
    return Recomputed(state, measures)


def announce(
    session: Session,
    practitioner: PersonRef,
    snapshot: PractitionerState | queries.Snapshot,
    state: rules.PersonState,
    *,
    today: dt.date,
    now: dt.datetime,
    sweep: bool,
    writes: Writes | None = None,
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
            writes=writes,
        )
    snapshot.announced_status = answer.status
    snapshot.next_transition_on = rules.next_change_after(state, today)
    return announced


def _announce_ended_registrations(
    session: Session,
    practitioner: PersonRef,
    previous: rules.PersonState,
    state: rules.PersonState,
    *,
    now: dt.datetime,
    writes: Writes,
) -> None:
    """A termination ends registrations without anyone writing to them: say so (rule 17)."""
    before = {s.registration_id: s for s in previous.registrations}
    for span in state.registrations:
        if span.ended_by == "termination" and before.get(span.registration_id) != span:
            # the registration's institution, so that only it (and the agency) reads where it was
            institution = queries.institution_by_code(session, span.institution_code)
            events.emit(
                session,
                "registration.ended",
                data={
                    "practitioner_code": practitioner.code,
                    "institution_code": span.institution_code,
                    "registration_id": span.registration_id,
                    "end_date": span.end.isoformat() if span.end else None,
                    "reason": "termination",
                },
                now=now,
                practitioner_id=practitioner.id,
                practitioner_code=practitioner.code,
                institution_id=institution.id if institution is not None else None,
                writes=writes,
            )


_INSERT_MEASURE = Measure.__table__.insert().returning(Measure.__table__.c.id)
_CANCEL_MEASURES = (
    update(Measure.__table__)
    .where(Measure.__table__.c.id.in_(bindparam("ids", expanding=True)))
    .values(state="cancelled", cancelled_at=bindparam("now"))
)


def _sync_measures(
    session: Session,
    practitioner: PersonRef,
    previous: rules.PersonState | None,
    state: rules.PersonState,
    *,
    now: dt.datetime,
    writes: Writes,
) -> list[MeasureRow] | None:
    """Measures are tasks: new triggers become pending tasks; vanished causes are cancelled, not deleted.

    The live tasks are always the measures of the last stored state (each recompute syncs them),
    so when those did not change there is nothing to read or write. Returns the live tasks in
    (triggered_on, id) order when it read them, None when it did not need to.
    """
    if previous is not None and previous.measures == state.measures:
        return [] if not state.measures else None
    writes.send(session)  # a new measure refers to its decision, which may be among them
    stored = [MeasureRow(**row._mapping) for row in queries.live_measures(session, practitioner.id)]
    wanted = {(m.year, m.kind, m.violation_id): m for m in state.measures}
    live = [m for m in stored if (m.year, m.kind, m.violation_id) in wanted]
    have = {(m.year, m.kind, m.violation_id) for m in stored}
    vanished = [m.id for m in stored if (m.year, m.kind, m.violation_id) not in wanted]
    if vanished:
        session.execute(_CANCEL_MEASURES, {"ids": vanished, "now": now})
        queries.expire_cached(session, Measure, vanished)
    missing = [m for key, m in wanted.items() if key not in have]
    if missing:
        institutions = dict(
            session.execute(
                select(Violation.id, Violation.institution_id).where(
                    Violation.id.in_([m.violation_id for m in missing])
                )
            ).all()
        )
    for m in missing:
        row = MeasureRow(
            id=0,
            year=m.year,
            kind=m.kind,
            violation_id=m.violation_id,
            institution_id=institutions[m.violation_id],
            triggered_on=m.triggered_on,
            state="pending",
        )
        values = asdict(row)
        del values["id"]
        # the id goes into the event and the caller's `triggered`
        row = replace(
            row,
            id=session.execute(
                _INSERT_MEASURE, {**values, "practitioner_id": practitioner.id, "created_at": now}
            ).scalar_one(),
        )
        live.append(row)
        events.emit(
            session,
            "measure.triggered",
            data={
                "measure_id": row.id,
                "kind": m.kind,
                "practitioner_code": practitioner.code,
                "year": m.year,
                "triggered_on": m.triggered_on.isoformat(),
                "violation_id": m.violation_id,
            },
            now=now,
            practitioner_id=practitioner.id,
            practitioner_code=practitioner.code,
            institution_id=row.institution_id,
            writes=writes,
        )
    return sorted(live, key=lambda m: (m.triggered_on, m.id))


def stored_state(snapshot: PractitionerState | queries.Snapshot | Row | None) -> rules.PersonState:
    if snapshot is None or not snapshot.state:
        return EMPTY_STATE
    return rules.state_from_mapping(snapshot.state)


def status_today(state: rules.PersonState, now: dt.datetime) -> rules.Eligibility:
    return rules.eligibility_on(state, local_date(now))


def standing_view(
    session: Session,
    principal: Principal,
    practitioner: PersonRef,
    state: rules.PersonState,
    *,
    year: int,
    now: dt.datetime,
    measures: Sequence[MeasureRow] | None = None,
) -> dict[str, Any]:
    """The <Standing> of docs/api.md for one score year, with status as of today.

    Totals, tier, status and sanctions are national (rule 5); the measures listed are those the
    principal may see, and a sanction names its decision only to those who may read it.
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
    measures = [
        m for m in measures if sees(principal, practitioner=practitioner.id, institution=m.institution_id)
    ]
    sanctions = [s for s in state.suspensions if s.year == year] + [
        t for t in state.terminations if t.year == year
    ]
    readable = visible_violations(session, principal, [s.violation_id for s in sanctions])
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
        "sanctions": [
            {**sanction_view(s), "violation_id": s.violation_id if s.violation_id in readable else None}
            for s in sanctions
        ],
    }


def visible_violations(session: Session, principal: Principal, violation_ids: Sequence[int]) -> set[int]:
    """Which of these decisions the principal may read (access.sees), in one query."""
    if principal.is_national or not violation_ids:
        return set(violation_ids)
    return set(
        session.scalars(
            select(Violation.id).where(
                Violation.id.in_(set(violation_ids)),
                sees(principal, practitioner=Violation.practitioner_id, institution=Violation.institution_id),
            )
        )
    )


def measure_view(m: Measure | MeasureRow, practitioner_code: str) -> dict[str, Any]:
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
