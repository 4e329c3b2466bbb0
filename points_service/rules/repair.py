"""Repair (记分修复, docs/rules.md §4 rules 19–22, §6 rule 26): what an approved application can credit."""

from __future__ import annotations

import datetime as dt

from .calendar import score_year
from .policy import Policy
from .standing import PersonState, repair_credit_for


def repair_credit_on(
    state: PersonState, *, activity: str, day: dt.date, policy: Policy
) -> tuple[int, str | None]:
    """The points an application approved on `day` would remove, and the rule that limited it."""
    year = state.year(score_year(day))
    by_activity: dict[str, int] = {}
    for credit in state.repairs:
        if credit.year == year.year:
            by_activity[credit.activity] = by_activity.get(credit.activity, 0) + credit.points
    return repair_credit_for(
        activity=activity,
        total=year.points_total,
        repaired=year.points_repaired,
        max_single=year.max_single_event,
        repaired_by_activity=by_activity,
        policy=policy,
    )


def repair_refusal(state: PersonState, *, activity: str, day: dt.date, policy: Policy) -> str | None:
    """Why an application cannot succeed on `day`, or None when it can.

    Submissions that cannot succeed are refused at once: nothing recorded this year, the
    yearly or per-kind cap reached, or a year that holds a single-event 12.
    """
    credit, reason = repair_credit_on(state, activity=activity, day=day, policy=policy)
    if credit > 0:
        return None
    year = state.year(score_year(day))
    if year.points_total == 0 and reason and "rule 21: only points" in reason:
        if year.points_recorded:
            return f"docs/rules.md rule 21: every point recorded in {year.year} has already been repaired"
        return f"docs/rules.md rule 21: there are no points recorded in {year.year} to repair"
    return reason or "docs/rules.md rule 20: this activity credits nothing"
