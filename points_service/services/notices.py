"""The public notice register (通报, docs/rules.md rule 13): the notices the agency has published.

A public notice is published on the agency's website and WeChat account; the register is public
information, so every authenticated role reads it whole. A published notice whose cause vanishes
is not cancelled like a task nobody acted on: it is withdrawn from the register (services.state,
rules.effects.ended_state), and stays in the person's file marked withdrawn.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased

from ..persistence.models import Institution, LedgerEntry, Measure, Violation
from ..rules.policy import PolicySet
from .access import Principal, require

# -- the register -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    id: int
    published_name: str
    institution_code: str
    institution_name: str
    behaviour_code: str
    behaviour_text: str
    points: int
    year: int
    published_on: dt.date


_REVERSAL = aliased(LedgerEntry)
# the points the decision carries now: its one decision entry that no reversal cancels (an
# amendment is a reversal plus a new entry, rule 24)
_CURRENT_POINTS = (
    select(LedgerEntry.points)
    .where(
        LedgerEntry.violation_id == Measure.violation_id,
        LedgerEntry.kind == "decision",
        ~exists().where(_REVERSAL.reverses_entry_id == LedgerEntry.id),
    )
    .correlate(Measure)
    .limit(1)
    .scalar_subquery()
)


def list_notices(
    session: Session,
    principal: Principal,
    *,
    year: int | None,
    province: str | None,
    after: tuple[int, int] | None,
    limit: int,
    policies: PolicySet,
) -> tuple[list[Notice], tuple[int, int] | None]:
    """Published notices, newest first (publication day, then the later publication first); a page
    and the position after it ((publication day as an ordinal, id), or None on the last page).

    No scope filter (access.sees) applies: what the agency published is public, and a withdrawn
    notice is no longer in the register whoever asks.
    """
    require(principal, "notices:read")
    query = (
        select(
            Measure.id,
            Measure.published_name,
            Measure.year,
            Measure.published_on,
            Institution.code,
            Institution.name,
            Violation.behaviour_code,
            Violation.profile_id,
            _CURRENT_POINTS.label("points"),
        )
        .join(Institution, Institution.id == Measure.institution_id)
        .join(Violation, Violation.id == Measure.violation_id)
        .where(Measure.kind == "public_notice", Measure.state == "published")
        .order_by(Measure.published_on.desc(), Measure.id.desc())
        .limit(limit + 1)
    )
    if year is not None:
        query = query.where(
            Measure.published_on >= dt.date(year, 1, 1), Measure.published_on < dt.date(year + 1, 1, 1)
        )
    if province is not None:
        # a notice belongs to the province of the institution where its case arose (rule 27)
        query = query.where(Institution.region_code.like(f"{province}%"))
    if after is not None:
        day, last_id = dt.date.fromordinal(after[0]), after[1]
        query = query.where(
            (Measure.published_on < day) | ((Measure.published_on == day) & (Measure.id < last_id))
        )
    rows = session.execute(query).all()
    page = [
        Notice(
            id=row.id,
            published_name=row.published_name,
            institution_code=row.code,
            institution_name=row.name,
            behaviour_code=row.behaviour_code,
            behaviour_text=policies.get(row.profile_id).behaviour(row.behaviour_code).text,
            points=row.points,
            year=row.year,
            published_on=row.published_on,
        )
        for row in rows[:limit]
    ]
    more = len(rows) > limit and page
    return page, ((page[-1].published_on.toordinal(), page[-1].id) if more else None)
