"""The agency's figures for a score year (GET /v1/statistics): decisions and points, people by tier,
measures, who is suspended or terminated today, decisions by band, repairs and appeals.

Every figure is one aggregate in the database (GROUP BY there), never a walk over rows here. Two
kinds of filter (docs/decisions.md):

- a *case* (a decision, its measure, an appeal, a repair application) belongs to the institution
  where it arose, and to that institution's province (the region code's first two digits);
- a *person* (people by tier, suspended and terminated today) belongs to every institution where
  they held a registration on any day of the year, as the institution recorded it.

Both go through `access.sees`, so an HR system counts exactly what it could read one by one.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from ..persistence import queries
from ..persistence.models import (
    APPEAL_STATUSES,
    MEASURE_STATES,
    REPAIR_STATUSES,
    Appeal,
    Institution,
    LedgerEntry,
    Measure,
    PractitionerState,
    Registration,
    RepairApplication,
    Violation,
)
from ..persistence.statistics import year_tiers
from ..rules import standing as rules
from ..rules.calendar import LEGAL_TZ
from ..rules.policy import MEASURE_KINDS, TIERS, PolicySet
from ..rules.snapshot import state_from_mapping
from .access import Principal, require, sees
from .errors import NotFound, RuleViolation

# the tiers a person can reach (rule 13), `none` left out: nobody asks how many reached nothing
TIERS_REACHED = TIERS[1:]
SANCTIONED = ("suspended", "terminated")


@dataclass(frozen=True)
class Scope:
    """What the figures are about: a score year, and at most one province or institution."""

    year: int
    province: str | None = None
    institution: Institution | None = None

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.year, 1, 1)

    @property
    def next_year(self) -> dt.date:
        return dt.date(self.year + 1, 1, 1)

    def instants(self) -> tuple[dt.datetime, dt.datetime]:
        """The year as UTC instants: a local year starts at 00:00 Asia/Shanghai on 1 January."""
        start = dt.datetime.combine(self.first_day, dt.time(), LEGAL_TZ).astimezone(dt.UTC)
        end = dt.datetime.combine(self.next_year, dt.time(), LEGAL_TZ).astimezone(dt.UTC)
        return start, end


def resolve_scope(
    session: Session,
    principal: Principal,
    *,
    year: int,
    province: str | None,
    institution_code: str | None,
) -> Scope:
    """The caller's filters, checked: an HR system always asks about its own institution (naming
    another institution, or a province, is asking about what it may not see: 404)."""
    require(principal, "statistics:read")
    if principal.role == "hr_system":
        if province is not None:
            raise NotFound(f"no province {province} in this key's scope")
        if institution_code is not None and institution_code != principal.institution_code:
            raise NotFound(f"no institution {institution_code}")
        institution_code = principal.institution_code
    institution = None
    if institution_code is not None:
        institution = queries.institution_by_code(session, institution_code)
        if institution is None:
            raise NotFound(f"no institution {institution_code}")
        if province is not None and institution.region_code[:2] != province:
            raise RuleViolation(
                f"institution {institution_code} is not in province {province}",
                rule="docs/rules.md rule 3",
                field="institution_code",
            )
    return Scope(year=year, province=province, institution=institution)


def _inline(value: Any) -> Any:
    """A constant written into the statement itself: a prepared statement's generic plan cannot see
    a bound `LIKE '13%'` or the partial index's status list, and picks a plan for any value."""
    return literal(value, literal_execute=True)


def _in_province(scope: Scope) -> Any:
    return select(Institution.id).where(Institution.region_code.like(_inline(f"{scope.province}%")))


def _where_arose(principal: Principal, scope: Scope, practitioner: Any, institution: Any) -> list[Any]:
    """A case's filter: the caller's scope and the asked institution or province of its institution."""
    clauses = [sees(principal, practitioner=practitioner, institution=institution)]
    if scope.institution is not None:
        clauses.append(institution == scope.institution.id)
    elif scope.province is not None:
        clauses.append(institution.in_(_in_province(scope)))
    return clauses


def _where_registered(principal: Principal, scope: Scope, practitioner: Any) -> list[Any]:
    """A person's filter: a registration there on some day of the year. Unfiltered, the agency
    counts everyone; an HR system always has its institution as the filter."""
    if principal.is_national and scope.institution is None and scope.province is None:
        return []
    reg = aliased(Registration)
    clauses: list[ColumnElement[bool]] = [
        reg.practitioner_id == practitioner,
        reg.start_date < scope.next_year,
        or_(reg.end_date.is_(None), reg.end_date > scope.first_day),
        sees(principal, practitioner=reg.practitioner_id, institution=reg.institution_id),
    ]
    if scope.institution is not None:
        clauses.append(reg.institution_id == scope.institution.id)
    elif scope.province is not None:
        clauses.append(reg.institution_id.in_(_in_province(scope)))
    return [exists().where(and_(*clauses))]


def statistics(
    session: Session, principal: Principal, scope: Scope, *, policies: PolicySet, today: dt.date
) -> dict[str, Any]:
    """Every figure of docs/api.md "Statistics" for the scope, with zeros where nothing happened."""
    decisions, points, by_band = _decisions(session, principal, scope, policies)
    suspended, terminated = _sanctioned_today(session, principal, scope, today)
    return {
        "year": scope.year,
        "province": scope.province,
        "institution_code": scope.institution.code if scope.institution else None,
        "today": today,
        "decisions": decisions,
        "points": points,
        "people_by_tier": _people_by_tier(session, principal, scope, policies),
        "measures": _measures(session, principal, scope),
        "suspended_today": suspended,
        "terminated_today": terminated,
        "decisions_by_band": by_band,
        "repairs": _repairs(session, principal, scope),
        "appeals": _appeals(session, principal, scope),
    }


def _decisions(
    session: Session, principal: Principal, scope: Scope, policies: PolicySet
) -> tuple[int, int, dict[str, int]]:
    """Decisions in force whose decision date falls in the year: not revoked; an amended one once,
    with its current points. A decision is in force while one of its decision entries is not
    reversed (an amendment reverses the old entry and writes a new one, rule 24)."""
    reversal = aliased(LedgerEntry)
    rows = session.execute(
        select(Violation.profile_id, Violation.behaviour_code, func.count(), func.sum(LedgerEntry.points))
        .select_from(LedgerEntry)
        .join(Violation, Violation.id == LedgerEntry.violation_id)
        .where(
            LedgerEntry.kind == "decision",
            LedgerEntry.score_year == scope.year,
            ~exists().where(reversal.reverses_entry_id == LedgerEntry.id),
            *_where_arose(principal, scope, Violation.practitioner_id, Violation.institution_id),
        )
        .group_by(Violation.profile_id, Violation.behaviour_code)
    ).all()
    # the groups are (profile, behaviour code): at most the catalogue's codes per profile; each
    # profile's catalogue names the code's band (rule 7)
    by_band = {str(band): 0 for band in _bands(policies)}
    for profile_id, code, count, _ in rows:
        band = str(policies.get(profile_id).behaviour(code).band)
        by_band[band] = by_band.get(band, 0) + count
    return sum(r[2] for r in rows), sum(r[3] or 0 for r in rows), by_band


def _bands(policies: PolicySet) -> list[int]:
    return sorted({band for policy in policies.profiles.values() for band in policy.bands})


def _people_by_tier(
    session: Session, principal: Principal, scope: Scope, policies: PolicySet
) -> dict[str, int]:
    """Each person once, at the highest tier reached in the year (persistence.statistics.year_tiers:
    the snapshot's tier where it may be a sanction, the live tasks' otherwise)."""
    floor = min(policy.lowest_sanction_points() for policy in policies.profiles.values())
    tiers = year_tiers(session, scope.year, sanction_floor=floor)
    counted: dict[str, int] = dict(
        session.execute(
            select(tiers.c.tier, func.count())
            .where(*_where_registered(principal, scope, tiers.c.practitioner_id))
            .group_by(tiers.c.tier)
        ).all()
    )
    return {tier: counted.get(tier, 0) for tier in TIERS_REACHED}


def _measures(session: Session, principal: Principal, scope: Scope) -> dict[str, dict[str, int]]:
    """The year's measure tasks by kind and state, at the institution where their decision arose."""
    counted = {
        (kind, state): n
        for kind, state, n in session.execute(
            select(Measure.kind, Measure.state, func.count())
            .where(
                Measure.year == scope.year,
                *_where_arose(principal, scope, Measure.practitioner_id, Measure.institution_id),
            )
            .group_by(Measure.kind, Measure.state)
        )
    }
    return {
        kind: {state: counted.get((kind, state), 0) for state in MEASURE_STATES} for kind in MEASURE_KINDS
    }


def _sanctioned_today(
    session: Session, principal: Principal, scope: Scope, today: dt.date
) -> tuple[int, int]:
    """How many people are suspended and terminated today, as rules.eligibility_on says.

    `announced_status` is the status on the day of the last announcement, and `next_transition_on`
    the first later day on which time alone can change it (both written together, services.state
    `announce`). So where that day is still to come the announced status is today's, and is counted
    in the database (a partial index holds the few sanctioned people). The rest, whose status may
    have changed since (normally none after the morning's transitions sweep; those due today before
    it runs), are judged by the rules themselves.
    """
    people = _where_registered(principal, scope, PractitionerState.practitioner_id)
    current = Counter(
        dict(
            session.execute(
                select(PractitionerState.announced_status, func.count())
                .where(
                    PractitionerState.announced_status.in_([_inline(s) for s in SANCTIONED]),
                    or_(
                        PractitionerState.next_transition_on.is_(None),
                        PractitionerState.next_transition_on > today,
                    ),
                    *people,
                )
                .group_by(PractitionerState.announced_status)
            ).all()
        )
    )
    for (state,) in session.execute(
        select(PractitionerState.state).where(PractitionerState.next_transition_on <= today, *people)
    ):
        current[rules.eligibility_on(state_from_mapping(state), today).status] += 1
    return current["suspended"], current["terminated"]


def _repairs(session: Session, principal: Principal, scope: Scope) -> dict[str, int]:
    """Applications by status, each counted in the year it reached that status (submitted, the
    institution's review, the agency's review), at the institution that reviews it; and the points
    the agency's approvals of the year repaired, as the ledger credited them (rule 19)."""
    start, end = scope.instants()
    reached = func.coalesce(
        RepairApplication.agency_reviewed_at,
        RepairApplication.institution_reviewed_at,
        RepairApplication.submitted_at,
    )
    where = _where_arose(
        principal, scope, RepairApplication.practitioner_id, RepairApplication.institution_id
    )
    counted = dict(
        session.execute(
            select(RepairApplication.status, func.count())
            .where(reached >= start, reached < end, *where)
            .group_by(RepairApplication.status)
        ).all()
    )
    credited = session.scalar(
        select(func.coalesce(-func.sum(LedgerEntry.points), 0))
        .select_from(LedgerEntry)
        .join(RepairApplication, RepairApplication.id == LedgerEntry.repair_id)
        .where(LedgerEntry.kind == "repair", LedgerEntry.score_year == scope.year, *where)
    )
    return {
        **{status: counted.get(status, 0) for status in REPAIR_STATUSES},
        "points_repaired": credited or 0,
    }


def _appeals(session: Session, principal: Principal, scope: Scope) -> dict[str, int]:
    """Appeals by status, each counted in the year it reached it (filed, or decided), at the
    institution where the appealed decision arose."""
    reached = func.coalesce(Appeal.decided_on, Appeal.filed_on)
    counted = dict(
        session.execute(
            select(Appeal.status, func.count())
            .join(Violation, Violation.id == Appeal.violation_id)
            .where(
                reached >= scope.first_day,
                reached < scope.next_year,
                *_where_arose(principal, scope, Violation.practitioner_id, Violation.institution_id),
            )
            .group_by(Appeal.status)
        ).all()
    )
    return {status: counted.get(status, 0) for status in APPEAL_STATUSES}
