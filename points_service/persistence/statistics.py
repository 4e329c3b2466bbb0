"""SQL that knows each dialect, for the agency's statistics: the tier each person reached in one
score year (docs/rules.md rule 13)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Subquery,
    any_,
    case,
    cast,
    exists,
    func,
    literal,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, aliased

from ..rules.policy import MEASURE_KINDS, tier_rank
from .models import ENDED_MEASURE_STATES, LedgerEntry, Measure, PractitionerState

SANCTION_TIERS = ("suspension", "termination")
_RANK = {kind: tier_rank(kind) for kind in MEASURE_KINDS}


def year_tiers(session: Session, year: int, *, sanction_floor: int) -> Subquery:
    """(practitioner_id, tier) of everyone who reached a tier above `none` in `year`, once each.

    A year's tier is the highest reached (rule 13), and the snapshot (`practitioner_state.state →
    years`) holds it. Unpacking the JSON of everyone scored in a year costs a read of most of the
    snapshot table, so it is read only where it is needed:

    - a sanction tier (suspension, termination) is read from the snapshot of the people whose
      decisions in force that year add up to at least `sanction_floor` points (the fewest at which
      any profile suspends, Policy.lowest_sanction_points): nobody else can have reached one;
    - for everyone else the tier is the highest of their live measure tasks of the year: the
      recompute keeps those equal to the snapshot's measures, in the same transaction, and a year
      rises to a talk or notice tier only by triggering that measure (rules 10, 13).
    """
    state = PractitionerState.__table__
    reversal = aliased(LedgerEntry)
    heavy = (
        select(LedgerEntry.practitioner_id)
        .where(
            LedgerEntry.kind == "decision",
            LedgerEntry.score_year == year,
            ~exists().where(reversal.reverses_entry_id == LedgerEntry.id),
        )
        .group_by(LedgerEntry.practitioner_id)
        .having(func.sum(LedgerEntry.points) >= sanction_floor)
    )
    year_of: Any
    tier_of: Any
    if session.get_bind().dialect.name == "postgresql":
        element = func.jsonb_array_elements(state.c.state["years"]).table_valued("value").alias("y")
        year_of = cast(element.c.value.op("->>")(literal("year")), Integer)
        tier_of = element.c.value.op("->>")(literal("tier"))
        # one array of ids, so the few snapshots are fetched by key; as a join the planner guesses
        # the grouped count far too high and reads the whole table
        heavy_ids = heavy.subquery()
        ids = select(func.array_agg(heavy_ids.c.practitioner_id)).scalar_subquery()
        candidate = state.c.practitioner_id == any_(cast(ids, ARRAY(BigInteger)))
    else:
        element = func.json_each(state.c.state, literal("$.years")).table_valued("value").alias("y")
        year_of = func.json_extract(element.c.value, literal("$.year"))
        tier_of = func.json_extract(element.c.value, literal("$.tier"))
        candidate = state.c.practitioner_id.in_(heavy)
    sanctioned = (
        select(state.c.practitioner_id, tier_of.label("tier"))
        .select_from(state)
        .join(element, true())
        .where(candidate, year_of == year, tier_of.in_(SANCTION_TIERS))
        .cte("sanctioned")
    )
    measured = (
        select(Measure.practitioner_id, func.max(case(_RANK, value=Measure.kind)).label("rank"))
        .where(Measure.year == year, Measure.state.not_in(ENDED_MEASURE_STATES))
        .group_by(Measure.practitioner_id)
        .subquery("measured")
    )
    return union_all(
        select(sanctioned.c.practitioner_id, sanctioned.c.tier),
        select(
            measured.c.practitioner_id,
            case({rank: kind for kind, rank in _RANK.items()}, value=measured.c.rank).label("tier"),
        ).where(measured.c.practitioner_id.not_in(select(sanctioned.c.practitioner_id))),
    ).subquery("year_tier")
