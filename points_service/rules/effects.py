"""What a change to a person brings: the functional core behind every write and every sweep.

`plan` compares the state derived before a change with the state derived after it (both from the
ledger, rules.standing.derive_state), given what the feed last said of the person and which measure
tasks exist, and answers with the effects: the snapshot to store, the events to publish and the
measure tasks to open or close. It decides; services.state applies. Decisions, amendments,
revocations, repairs, registrations, sweeps and imports all go through the same pair, so what a
change announces does not depend on the path that made it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .standing import (
    Eligibility,
    Measure,
    PersonState,
    RegistrationSpan,
    eligibility_on,
    next_change_after,
    transition_event,
)

# a measure task is identified by what triggered it: (year, kind, violation id)
TaskKey = tuple[int, str, int]


@dataclass(frozen=True)
class Event:
    """A change-feed event to publish (services.events writes it to the outbox)."""

    type: str
    data: Mapping[str, Any]
    # where it arose, when that matters for who may read it (access.sees); None: national
    institution_code: str | None = None
    # a fact a sweep may find again on another run: published once under this key
    dedupe_key: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """The stored cache of the derived state, and what the feed last said of the person."""

    state: PersonState
    announced_status: str
    # the next day on which time alone may change the answer: when the transitions sweep looks again
    next_transition_on: dt.date | None


@dataclass(frozen=True)
class Effects:
    snapshot: Snapshot
    events: tuple[Event, ...] = ()
    # new tasks; each is announced as `measure.triggered` once the database has given it its id
    open_measures: tuple[Measure, ...] = ()
    # live tasks whose cause is gone (revoked or amended away): closed, never deleted
    close_measures: tuple[TaskKey, ...] = field(default=())


class Triggered(Protocol):
    """A measure as the rules derive it, or the task that carries it out."""

    @property
    def year(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def violation_id(self) -> int: ...


def task_key(measure: Triggered) -> TaskKey:
    return (measure.year, measure.kind, measure.violation_id)


def ended_state(state: str) -> str:
    """What a task whose cause vanished becomes (rule 13): a published notice was public, so it is
    withdrawn from the public register for the public to see it go; any other task is cancelled."""
    return "withdrawn" if state == "published" else "cancelled"


def plan(
    *,
    practitioner_code: str,
    before: PersonState,
    after: PersonState,
    announced: str | None,
    live_tasks: Collection[TaskKey],
    today: dt.date,
    sweep: bool = False,
) -> Effects:
    """The effects of a person's state going from `before` to `after`, as of `today`.

    `announced` is the status the feed last published (None: never). A `sweep` publishes the
    changes that time alone brings under dedupe keys, so a second run of the same day says nothing
    twice, and also says when a re-registration bar has expired.
    """
    answer = eligibility_on(after, today)
    events = [
        *_registrations_ended(practitioner_code, before, after),
        *(_bars_expired(practitioner_code, after, today) if sweep else ()),
        *_status_changed(practitioner_code, announced, answer, today, sweep),
    ]
    wanted = {task_key(m): m for m in after.measures}
    return Effects(
        snapshot=Snapshot(after, answer.status, next_change_after(after, today)),
        events=tuple(events),
        open_measures=tuple(m for key, m in wanted.items() if key not in live_tasks),
        close_measures=tuple(key for key in live_tasks if key not in wanted),
    )


def _registrations_ended(code: str, before: PersonState, after: PersonState) -> list[Event]:
    """A termination ends registrations without anyone writing to them: say so (rule 17), to the
    registration's own institution (the decision may have been made at another one)."""
    earlier: dict[int, RegistrationSpan] = {s.registration_id: s for s in before.registrations}
    return [
        Event(
            "registration.ended",
            {
                "practitioner_code": code,
                "institution_code": span.institution_code,
                "registration_id": span.registration_id,
                "end_date": span.end.isoformat() if span.end else None,
                "reason": "termination",
            },
            institution_code=span.institution_code,
        )
        for span in after.registrations
        if span.ended_by == "termination" and earlier.get(span.registration_id) != span
    ]


def _status_changed(
    code: str, announced: str | None, answer: Eligibility, today: dt.date, sweep: bool
) -> list[Event]:
    kind = transition_event(announced, answer.status)
    if kind is None:
        return []
    return [
        Event(
            kind,
            {
                "practitioner_code": code,
                "status": answer.status,
                "previous_status": announced,
                "on": today.isoformat(),
                "until": answer.until.isoformat() if answer.until else None,
                "barred_until": answer.barred_until.isoformat() if answer.barred_until else None,
                "reason": answer.reason,
            },
            dedupe_key=f"{kind}:{code}:{today.isoformat()}" if sweep else None,
        )
    ]


def _bars_expired(code: str, state: PersonState, today: dt.date) -> list[Event]:
    """No violation id: every institution of the person reads this national fact, and the decision
    may have been made at another one."""
    return [
        Event(
            "eligibility.bar_expired",
            {"practitioner_code": code, "barred_until": t.barred_until.isoformat()},
            dedupe_key=f"eligibility.bar_expired:{code}:{t.barred_until.isoformat()}",
        )
        for t in state.terminations
        if t.barred_until <= today
    ]
