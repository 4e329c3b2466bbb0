"""The appeal window (docs/rules.md rule 23): Chinese working days after the decision date.

chinese-calendar knows only the years published before its release (1.11.0 raises
NotImplementedError for 2027). For a year it does not know, an operator-maintained holiday table
(rules/calendars/holidays.toml) is used if it marks the year official; otherwise Monday–Friday minus
any holidays listed, and the deadline is reported as estimated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import chinese_calendar

APPEAL_OUTCOMES = ("upheld", "amended", "revoked")


@dataclass(frozen=True)
class HolidayYear:
    holidays: frozenset[dt.date] = frozenset()
    workdays: frozenset[dt.date] = frozenset()  # make-up working days on weekends (调休)
    official: bool = False  # the State Council's schedule, copied in by an operator


@dataclass(frozen=True)
class WorkdayCalendar:
    operator_years: Mapping[int, HolidayYear] = field(default_factory=dict)

    def is_workday(self, day: dt.date) -> tuple[bool, bool]:
        """(is a working day, is that an estimate)."""
        try:
            return bool(chinese_calendar.is_workday(day)), False
        except NotImplementedError:
            pass
        year = self.operator_years.get(day.year, HolidayYear())
        if day in year.workdays:
            return True, not year.official
        if day in year.holidays:
            return False, not year.official
        return day.weekday() < 5, not year.official


def parse_holidays(mapping: Mapping[str, Any]) -> WorkdayCalendar:
    years = {}
    for year, entry in mapping.get("years", {}).items():
        years[int(year)] = HolidayYear(
            holidays=frozenset(_date(d) for d in entry.get("holidays", [])),
            workdays=frozenset(_date(d) for d in entry.get("workdays", [])),
            official=bool(entry.get("official", False)),
        )
    return WorkdayCalendar(operator_years=years)


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


@dataclass(frozen=True)
class AppealWindow:
    deadline: dt.date  # the last day an appeal may be filed (inclusive)
    estimated: bool


def appeal_window(decided_on: dt.date, working_days: int, calendar: WorkdayCalendar) -> AppealWindow:
    """The last day of the window: the `working_days`-th working day after the decision date."""
    day, counted, estimated = decided_on, 0, False
    while counted < working_days:
        day += dt.timedelta(days=1)
        workday, guess = calendar.is_workday(day)
        estimated = estimated or guess
        if workday:
            counted += 1
    return AppealWindow(deadline=day, estimated=estimated)


@dataclass(frozen=True)
class OutcomeProblem:
    message: str
    rule: str
    field: str


def outcome_problem(
    outcome: str, points: int | None, *, behaviour: str, current_points: int, allowed: tuple[int, int]
) -> OutcomeProblem | None:
    """Why this outcome cannot be decided, or None (rule 23). `allowed` is the lowest and highest
    points the behaviour may carry: the reviewer may move within the band or one band either way, as
    an inspector could with a reasoned adjustment (rule 8)."""
    if outcome not in APPEAL_OUTCOMES:
        return OutcomeProblem(
            "outcome must be upheld, amended or revoked", "docs/rules.md rule 23", "outcome"
        )
    if outcome != "amended":
        if points is not None:
            return OutcomeProblem(
                "points are given only with outcome `amended`", "docs/rules.md rule 23", "points"
            )
        return None
    if points is None:
        return OutcomeProblem("an amendment gives the new points", "docs/rules.md rule 23", "points")
    low, high = allowed
    if not low <= points <= high:
        return OutcomeProblem(
            f"points for {behaviour} must lie between {low} and {high}", "docs/rules.md rule 8", "points"
        )
    if points == current_points:
        return OutcomeProblem(
            "the points are unchanged: decide `upheld` instead", "docs/rules.md rule 23", "points"
        )
    return None
