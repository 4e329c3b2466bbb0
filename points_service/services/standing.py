"""The person's standing as a reader sees it: one score year's points, tier and measures, the
sanctions, and the status today (docs/api.md Standing and eligibility). Plain objects; the API's
schemas shape them into answers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ..persistence import queries
from ..persistence.models import Measure
from ..rules import standing as rules
from ..rules.calendar import local_date
from .access import Principal, readable_violations, sees, visible_practitioner
from .state import stored_state


@dataclass(frozen=True)
class Sanction:
    """A suspension or termination; `violation_id` is None for a reader who may not see the decision
    that imposed it (the sanction itself is national, docs/rules.md rule 5)."""

    kind: str
    start: dt.date
    end: dt.date | None
    months: int | None
    barred_until: dt.date | None
    bar_years: int | None
    basis: str
    violation_id: int | None
    shortened_by_months: int


@dataclass(frozen=True)
class Standing:
    practitioner_code: str
    year: int
    points_total: int
    points_recorded: int
    points_repaired: int
    max_single_event: int
    tier: str
    status: str
    status_until: dt.date | None
    barred_until: dt.date | None
    measures: Sequence[Measure]
    sanctions: Sequence[Sanction]


def sanction_of(item: rules.Suspension | rules.Termination, *, readable: bool = True) -> Sanction:
    violation_id = item.violation_id if readable else None
    if isinstance(item, rules.Suspension):
        return Sanction(
            "suspension", item.start, item.end, item.months, None, None, item.basis, violation_id,
            item.shortened_by_months,
        )  # fmt: skip
    return Sanction(
        "termination", item.start, None, None, item.barred_until, item.bar_years, item.basis, violation_id,
        item.shortened_by_months,
    )  # fmt: skip


def standing_of(
    session: Session,
    principal: Principal,
    practitioner_code: str,
    practitioner_id: int,
    state: rules.PersonState,
    *,
    year: int,
    now: dt.datetime,
    measures: Sequence[Measure] | None = None,
) -> Standing:
    """One score year, with status as of today. Totals, tier, status and sanctions are national
    (rule 5); the measures are those the principal may see, and a sanction names its decision only
    to a reader of that decision. `measures`: the live tasks when the caller holds them (a write)."""
    y = state.year(year)
    if measures is None:
        measures = queries.live_measures(session, practitioner_id, year=year)
    shown = [
        m
        for m in measures
        if m.year == year and sees(principal, practitioner=practitioner_id, institution=m.institution_id)
    ]
    imposed: list[rules.Suspension | rules.Termination] = [*state.suspensions, *state.terminations]
    today = rules.eligibility_on(state, local_date(now))
    return Standing(
        practitioner_code=practitioner_code,
        year=year,
        points_total=y.points_total,
        points_recorded=y.points_recorded,
        points_repaired=y.points_repaired,
        max_single_event=y.max_single_event,
        tier=y.tier,
        status=today.status,
        status_until=today.until,
        barred_until=state.barred_until,
        measures=shown,
        sanctions=_as_read(session, principal, [s for s in imposed if s.year == year]),
    )


def _as_read(
    session: Session, principal: Principal, imposed: Sequence[rules.Suspension | rules.Termination]
) -> list[Sanction]:
    readable = readable_violations(session, principal, [s.violation_id for s in imposed])
    return [sanction_of(s, readable=s.violation_id in readable) for s in imposed]


def read_standing(
    session: Session, principal: Principal, code: str, *, year: int | None, now: dt.datetime
) -> Standing:
    """GET standing: one score year of a person the principal may see (default: this year)."""
    practitioner = visible_practitioner(session, principal, code)
    state = stored_state(queries.snapshot_of(session, practitioner.id))
    return standing_of(
        session, principal, code, practitioner.id, state, year=year or local_date(now).year, now=now
    )


def read_sanctions(session: Session, principal: Principal, code: str) -> list[Sanction]:
    """Every suspension and termination of a person the principal may see, of every score year, in
    the order the rules imposed them (the order of the sanctions in the person's file): a bar
    imposed last year can still be running today."""
    practitioner = visible_practitioner(session, principal, code)
    state = stored_state(queries.snapshot_of(session, practitioner.id))
    return _as_read(session, principal, [*state.suspensions, *state.terminations])
