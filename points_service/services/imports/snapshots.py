"""The snapshots of the people an import writes or touches, as services.state would store them.

People the import touches are planned and applied by services.state, like any write. People it
creates start from nothing, and the plan of nothing is a snapshot alone; those are written in bulk.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...persistence.copy import copy_rows
from ...persistence.models import ENDED_MEASURE_STATES, Measure, PractitionerState
from ...persistence.sql import rows_where_in
from ...rules import standing as rules
from ...rules.calendar import local_date
from ...rules.effects import Snapshot, plan
from ...rules.snapshot import state_to_mapping
from .. import state

# people whose plans are applied together: their snapshots are loaded with one query, and SQLite
# takes at most this many values in one (persistence.sql.rows_where_in)
_CHUNK = 900
_COLUMNS = (
    "practitioner_id",
    "practitioner_code",
    "ledger_version",
    "state",
    "updated_at",
    "announced_status",
    "next_transition_on",
)


class PersonRow(NamedTuple):
    """A person as services.state applies a plan to them (state.PersonRef)."""

    id: int
    code: str


@dataclass(frozen=True)
class Derived:
    """A person's state as the rules derive it from their ledger and registrations after the import."""

    person: PersonRow
    after: rules.PersonState
    ledger_version: int
    # whether the person may hold live measure tasks: only a decision triggers one, so someone whose
    # ledger was empty before the import has none to load (and none of an import's other people's)
    may_hold_tasks: bool = True


def apply_derived(session: Session, people: Iterable[Derived], *, now: dt.datetime) -> None:
    """Plan and apply each person's change (services.state), a chunk at a time: the snapshot, the
    events (a status change, a registration a termination ends), the measure tasks kept in step.
    A chunk's snapshots and live measures are loaded with one query each, so that the plans are
    applied to rows the session holds; `people` may be a generator, so that no more than a chunk
    of derived states is held at once."""
    today = local_date(now)
    iterator = iter(people)
    while chunk := list(islice(iterator, _CHUNK)):
        ids = [d.person.id for d in chunk]
        snapshots = {
            s.practitioner_id: s
            for (s,) in rows_where_in(
                session, select(PractitionerState), PractitionerState.practitioner_id, ids
            )
        }
        live: dict[int, list[Measure]] = defaultdict(list)
        scored = [d.person.id for d in chunk if d.ledger_version and d.may_hold_tasks]
        measures = (
            select(Measure)
            .where(Measure.state.not_in(ENDED_MEASURE_STATES))
            .order_by(Measure.triggered_on, Measure.id)
        )
        for (measure,) in rows_where_in(session, measures, Measure.practitioner_id, scored):
            live[measure.practitioner_id].append(measure)
        changes = [
            state.planned(
                d.person,
                snapshots.get(d.person.id),
                live[d.person.id],
                d.after,
                d.ledger_version,
                today=today,
            )
            for d in chunk
        ]
        state.apply(session, changes, now=now, in_bulk=True)
        session.flush()  # the chunk's rows go now, and the session lets go of them


def copy_snapshots(
    session: Session, rows: Iterable[tuple[int, str, int, Snapshot]], *, now: dt.datetime
) -> int:
    """New snapshots in bulk (persistence.copy): (practitioner id, code, ledger version, snapshot)
    of people who have none yet."""
    return _copy(
        session, ((pid, code, version, _json(s.state), s) for pid, code, version, s in rows), now=now
    )


def copy_empty_snapshots(
    session: Session, ids: Sequence[int], codes: Sequence[str], *, now: dt.datetime
) -> None:
    """The snapshot of people with no ledger and no registration yet: what services.state would
    store, the plan of an empty state. It is computed once; it announces nothing and opens no
    measure, so the snapshot is its whole effect, and writing it in bulk rather than applying it
    person by person changes nothing but the time an import takes."""
    empty = rules.PersonState()
    effects = plan(
        practitioner_code="", before=empty, after=empty, announced=None, live_tasks=(), today=local_date(now)
    )
    assert not effects.events and not effects.open_measures and not effects.close_measures
    text, snapshot = _json(empty), effects.snapshot
    _copy(session, ((pid, code, 0, text, snapshot) for pid, code in zip(ids, codes, strict=True)), now=now)


def _json(state: rules.PersonState) -> str:
    return json.dumps(state_to_mapping(state))


def _copy(session: Session, rows: Iterable[tuple[int, str, int, str, Snapshot]], *, now: dt.datetime) -> int:
    return copy_rows(
        session,
        PractitionerState,
        _COLUMNS,
        (
            (pid, code, version, text, now, snapshot.announced_status, snapshot.next_transition_on)
            for pid, code, version, text, snapshot in rows
        ),
    )
