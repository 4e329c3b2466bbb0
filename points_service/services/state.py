"""The imperative shell around rules.effects: load a person's ledger, derive, plan, apply.

Every write for a person calls `recompute` once its own rows are added, under the person's lock,
so the stored snapshot is always the rules applied to the ledger as it will be committed. The
transitions sweep and reconcile call it too, with `sweep=True`: the same plan, announced under
dedupe keys.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from ..persistence import queries
from ..persistence.models import LedgerEntry, Measure, Practitioner, PractitionerState, Violation
from ..rules import standing as rules
from ..rules.calendar import local_date
from ..rules.effects import Effects, ended_state, plan, task_key
from ..rules.policy import PolicySet
from ..rules.snapshot import eligibility_state_from_json, state_from_mapping, state_to_mapping
from . import events

EMPTY_STATE = rules.PersonState()


def derive(session: Session, practitioner: Practitioner, policies: PolicySet) -> rules.PersonState:
    """The rules applied to the person's whole ledger and registrations, as they stand in the session."""
    return derive_from(queries.ledger_for(session, practitioner.id), session, practitioner, policies)


def derive_from(
    ledger: Sequence[LedgerEntry], session: Session, practitioner: Practitioner, policies: PolicySet
) -> rules.PersonState:
    return rules.derive_state(
        decisions=[
            rules.Decision(e.id, e.violation_id, e.effective_on, e.points, e.profile_id)  # type: ignore[arg-type]
            for e in ledger
            if e.kind == "decision"
        ],
        reversals=[
            rules.Reversal(e.id, e.reverses_entry_id, e.effective_on)  # type: ignore[arg-type]
            for e in ledger
            if e.kind == "reversal"
        ],
        repairs=[
            rules.Repair(e.id, e.repair_id, e.effective_on, e.activity, e.profile_id)  # type: ignore[arg-type]
            for e in ledger
            if e.kind == "repair"
        ],
        registrations=[
            rules.Registration(r.id, code, r.start_date, r.end_date)
            for r, code in queries.registrations_for(session, practitioner.id)
        ],
        policies=policies.profiles,
    )


class PersonRef(Protocol):
    """What applying a plan needs of a person: a Practitioner, or a row of (id, code)."""

    @property
    def id(self) -> int: ...
    @property
    def code(self) -> str: ...


@dataclass(frozen=True)
class Change:
    """One person's plan, with what it is applied to: the stored snapshot and the live tasks."""

    person: PersonRef
    snapshot: PractitionerState | None
    live: Sequence[Measure]
    effects: Effects
    ledger_version: int


@dataclass(frozen=True)
class Recomputed:
    state: rules.PersonState
    # the person's live measure tasks after the change, oldest first
    measures: list[Measure]
    effects: Effects
    opened: list[Measure]


def recompute(
    session: Session,
    practitioner: Practitioner,
    *,
    policies: PolicySet,
    now: dt.datetime,
    today: dt.date | None = None,
    sweep: bool = False,
) -> Recomputed:
    """Derive the person's state from the ledger, plan what the change brings, and apply it."""
    session.flush()  # the caller's new rows are part of the ledger the rules read
    snapshot = queries.snapshot_of(session, practitioner.id)
    ledger = queries.ledger_for(session, practitioner.id)
    after = derive_from(ledger, session, practitioner, policies)
    live = queries.live_measures(session, practitioner.id)
    change = planned(
        practitioner, snapshot, live, after, len(ledger), today=today or local_date(now), sweep=sweep
    )
    # held until the answer is built: a task made here stays the same object when read back below
    opened = apply(session, [change], now=now)
    return Recomputed(after, queries.live_measures(session, practitioner.id), change.effects, opened)


def planned(
    person: PersonRef,
    snapshot: PractitionerState | None,
    live: Sequence[Measure],
    after: rules.PersonState,
    ledger_version: int,
    *,
    today: dt.date,
    sweep: bool = False,
) -> Change:
    """Ask the rules what going from the stored state to `after` brings (rules.effects.plan)."""
    effects = plan(
        practitioner_code=person.code,
        before=stored_state(snapshot),
        after=after,
        announced=snapshot.announced_status if snapshot is not None else None,
        live_tasks=[task_key(m) for m in live],
        today=today,
        sweep=sweep,
    )
    return Change(person, snapshot, live, effects, ledger_version)


def apply(
    session: Session, changes: Sequence[Change], *, now: dt.datetime, in_bulk: bool = False
) -> list[Measure]:
    """Carry out plans, for one person or an import's thousands, in the caller's unit of work: the
    snapshots, the events, the measure tasks (closed, never deleted; opened and announced).
    Returns the tasks it opened. `in_bulk` (imports): the events are written together, in the same
    order, by events.emit_many rather than one INSERT each."""
    batch: list[events.NewEvent] | None = [] if in_bulk else None
    institution_ids: dict[str, int | None] = {}
    for change in changes:
        _store_snapshot(session, change, now=now)
        for event in change.effects.events:
            code = event.institution_code
            if code is not None and code not in institution_ids:
                institution_ids[code] = queries.institution_id(session, code)
            _announce(
                session,
                batch,
                event.type,
                dict(event.data),
                change.person,
                institution_ids[code] if code is not None else None,
                now=now,
                dedupe_key=event.dedupe_key,
            )
        _close_measures(session, change, batch, now=now)
    _write(session, batch, now=now)
    opened = _open_measures(session, changes, batch, now=now)
    _write(session, batch, now=now)
    return opened


def _announce(
    session: Session,
    batch: list[events.NewEvent] | None,
    type_: str,
    data: dict,
    person: PersonRef,
    institution_id: int | None,
    *,
    now: dt.datetime,
    dedupe_key: str | None = None,
) -> None:
    """One event: emitted now, or kept in `batch` for `_write` (an event under a dedupe key is
    always emitted now: it is checked against the feed)."""
    if batch is None or dedupe_key is not None:
        events.emit(
            session,
            type_,
            data=data,
            now=now,
            practitioner_id=person.id,
            practitioner_code=person.code,
            institution_id=institution_id,
            dedupe_key=dedupe_key,
        )
    else:
        batch.append(events.NewEvent(type_, data, person.id, person.code, institution_id))


def _write(session: Session, batch: list[events.NewEvent] | None, *, now: dt.datetime) -> None:
    if batch:
        session.flush()  # the events emitted one by one before them keep their place in the feed
        events.emit_many(session, batch, now=now)
        batch.clear()


def _close_measures(
    session: Session, change: Change, batch: list[events.NewEvent] | None, *, now: dt.datetime
) -> None:
    """Tasks whose cause vanished end, never deleted: cancelled, or a published notice withdrawn
    from the register and announced (`measure.withdrawn`), so a copy of the register elsewhere
    takes it down too."""
    closing = set(change.effects.close_measures)
    for measure in change.live:
        if task_key(measure) not in closing:
            continue
        measure.state = ended_state(measure.state)
        if measure.state == "cancelled":
            measure.cancelled_at = now
            continue
        measure.withdrawn_at = now
        _announce(
            session,
            batch,
            "measure.withdrawn",
            {
                "measure_id": measure.id,
                "kind": measure.kind,
                "practitioner_code": change.person.code,
                "year": measure.year,
                "violation_id": measure.violation_id,
                "published_on": measure.published_on.isoformat() if measure.published_on else None,
                "withdrawn_on": local_date(now).isoformat(),
            },
            change.person,
            measure.institution_id,
            now=now,
        )


def _store_snapshot(session: Session, change: Change, *, now: dt.datetime) -> None:
    snapshot = change.snapshot
    if snapshot is None:
        snapshot = PractitionerState(practitioner_id=change.person.id, practitioner_code=change.person.code)
        session.add(snapshot)
    snapshot.state = state_to_mapping(change.effects.snapshot.state)
    snapshot.ledger_version = change.ledger_version
    snapshot.announced_status = change.effects.snapshot.announced_status
    snapshot.next_transition_on = change.effects.snapshot.next_transition_on
    snapshot.updated_at = now


def _open_measures(
    session: Session, changes: Sequence[Change], batch: list[events.NewEvent] | None, *, now: dt.datetime
) -> list[Measure]:
    """New tasks, at the institution of the decision that triggered them, each announced with its id."""
    wanted = [(change.person, m) for change in changes for m in change.effects.open_measures]
    if not wanted:
        return []
    institutions = dict(
        session.execute(
            select(Violation.id, Violation.institution_id).where(
                Violation.id.in_({m.violation_id for _, m in wanted})
            )
        ).all()
    )
    opened = [
        Measure(
            practitioner_id=person.id,
            institution_id=institutions[m.violation_id],
            violation_id=m.violation_id,
            year=m.year,
            kind=m.kind,
            triggered_on=m.triggered_on,
            state="pending",
            created_at=now,
        )
        for person, m in wanted
    ]
    session.add_all(opened)
    session.flush()  # the ids go into the events
    for (person, _), measure in zip(wanted, opened, strict=True):
        _announce(
            session,
            batch,
            "measure.triggered",
            {
                "measure_id": measure.id,
                "kind": measure.kind,
                "practitioner_code": person.code,
                "year": measure.year,
                "triggered_on": measure.triggered_on.isoformat(),
                "violation_id": measure.violation_id,
            },
            person,
            measure.institution_id,
            now=now,
        )
    return opened


def stored_state(snapshot: PractitionerState | Row | None) -> rules.PersonState:
    """The rules' state of a snapshot entity or row (`state` is its JSON); nobody's yet is empty."""
    if snapshot is None or not snapshot.state:
        return EMPTY_STATE
    return state_from_mapping(snapshot.state)


def eligibility_state(snapshot: Row | None) -> rules.PersonState:
    """As stored_state, with only what eligibility reads, from an eligibility row of
    persistence.queries (`state_json`: the hot reads decode thousands a second)."""
    if snapshot is None or not snapshot.state_json:
        return EMPTY_STATE
    return eligibility_state_from_json(snapshot.state_json)


def status_today(state: rules.PersonState, now: dt.datetime) -> rules.Eligibility:
    return rules.eligibility_on(state, local_date(now))
