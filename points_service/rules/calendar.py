"""Legal dates: the Asia/Shanghai calendar and month arithmetic (docs/rules.md rules 6, 9, 15).

One convention for every range: half-open `[start, end)` — a suspension ending on `end` means the
person is eligible again on `end`.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

LEGAL_TZ = ZoneInfo("Asia/Shanghai")


def local_date(instant: dt.datetime) -> dt.date:
    """The legal date of an instant: the calendar day in Asia/Shanghai (rule 6)."""
    if instant.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    return instant.astimezone(LEGAL_TZ).date()


def score_year(decided_on: dt.date) -> int:
    """The score year of a decision is the year of its local decision date (rules 6 and 9)."""
    return decided_on.year


def add_months(day: dt.date, months: int) -> dt.date:
    """Calendar months with end-of-month clamping: Jan 31 + 1 month = Feb 28/29 (rule 15)."""
    return day + relativedelta(months=months)


def add_years(day: dt.date, years: int) -> dt.date:
    """Calendar years; Feb 29 + 1 year = Feb 28 (rule 17)."""
    return day + relativedelta(years=years)
