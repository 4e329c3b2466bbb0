"""The only two functions that read the clock; everything else takes `now`/`today` as arguments."""

from __future__ import annotations

import datetime as dt

from .rules.calendar import local_date


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def local_today() -> dt.date:
    return local_date(utc_now())
