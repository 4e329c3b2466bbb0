"""Rule 23: the appeal window of 15 Chinese working days, per profile.

Every deadline below was counted by hand against the State Council's 2026 schedule (as shipped in
chinese-calendar 1.11): the weekday holidays are skipped and the weekend make-up working days (调休上班)
are counted. `_explain` shows how such a date is derived; the tests assert the literal dates.
"""

from __future__ import annotations

import datetime as dt
import tomllib

import chinese_calendar
import pytest
from rules_builders import HEBEI, QINGHAI

from points_service.rules.appeals import (
    AppealWindow,
    HolidayYear,
    WorkdayCalendar,
    appeal_window,
    parse_holidays,
)
from points_service.settings import load_workday_calendar

D = dt.date
PROFILES = [HEBEI, QINGHAI]


@pytest.fixture(scope="module")
def shipped_calendar() -> WorkdayCalendar:
    """The operator holiday table shipped in rules/calendars/holidays.toml."""
    return load_workday_calendar()


def window(policies, profile_id: str, decided_on: dt.date, calendar: WorkdayCalendar) -> AppealWindow:
    return appeal_window(decided_on, policies.get(profile_id).appeal_window_working_days, calendar)


def _explain(decided_on: dt.date, working_days: int = 15) -> list[dt.date]:
    """The working days of a window as chinese-calendar counts them (for reading, not for asserting)."""
    counted, day = [], decided_on
    while len(counted) < working_days:
        day += dt.timedelta(days=1)
        if chinese_calendar.is_workday(day):
            counted.append(day)
    return counted


# -- the calendar facts the hand-counted dates rely on ---------------------------------------------


def test_rule_23_the_2026_schedule_has_six_weekend_make_up_working_days_and_the_holidays_counted_on():
    weekend_workdays = [
        d
        for d in chinese_calendar.get_workdays(D(2026, 1, 1), D(2026, 12, 31), include_weekends=True)
        if d.weekday() >= 5
    ]
    assert weekend_workdays == [
        D(2026, 1, 4),
        D(2026, 2, 14),
        D(2026, 2, 28),
        D(2026, 5, 9),
        D(2026, 9, 20),
        D(2026, 10, 10),
    ]
    spring_festival = [D(2026, 2, 15) + dt.timedelta(days=i) for i in range(9)]  # 02-15 .. 02-23
    assert not any(chinese_calendar.is_workday(d) for d in spring_festival)
    assert not any(chinese_calendar.is_workday(d) for d in [D(2026, 9, 25), D(2026, 10, 1), D(2026, 10, 7)])
    assert _explain(D(2026, 2, 13))[:2] == [D(2026, 2, 14), D(2026, 2, 24)]


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rule_23_both_shipped_profiles_give_a_window_of_fifteen_working_days(policies, profile_id):
    assert policies.get(profile_id).appeal_window_working_days == 15


# -- ordinary weeks --------------------------------------------------------------------------------


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rule_23_a_decision_on_monday_2026_03_09_can_be_appealed_until_monday_2026_03_30(
    policies, shipped_calendar, profile_id
):
    # 03-10..13 (4), 03-16..20 (9), 03-23..27 (14), 03-30 (15): no holiday in March 2026
    assert window(policies, profile_id, D(2026, 3, 9), shipped_calendar) == AppealWindow(
        deadline=D(2026, 3, 30), estimated=False
    )


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rule_23_a_decision_on_friday_2026_03_13_can_be_appealed_until_friday_2026_04_03(
    policies, shipped_calendar, profile_id
):
    # the decision day itself is not counted; 03-16 is the first working day; Qingming (04-04..06) comes after
    assert window(policies, profile_id, D(2026, 3, 13), shipped_calendar).deadline == D(2026, 4, 3)


# -- holidays skipped, make-up working days counted ------------------------------------------------


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rule_23_a_decision_before_spring_festival_2026_skips_02_15_to_23_and_counts_saturdays_02_14_and_28(
    policies, shipped_calendar, profile_id
):
    # decided Fri 02-13: Sat 02-14 make-up (1); holiday 02-15..23; 02-24..27 (5); Sat 02-28 make-up (6);
    # 03-02..06 (11); 03-09..12 (15). Without the two make-up Saturdays it would be Mon 03-16.
    result = window(policies, profile_id, D(2026, 2, 13), shipped_calendar)
    assert result == AppealWindow(deadline=D(2026, 3, 12), estimated=False)
    assert result.deadline != D(2026, 3, 16)


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rule_23_a_decision_before_mid_autumn_and_national_day_2026_counts_sunday_09_20_and_saturday_10_10(
    policies, shipped_calendar, profile_id
):
    # decided Fri 09-18: Sun 09-20 make-up (1); 09-21..24 (5); Mid-Autumn 09-25..27; 09-28..30 (8);
    # National Day 10-01..07; 10-08..09 (10); Sat 10-10 make-up (11); 10-12..15 (15)
    assert window(policies, profile_id, D(2026, 9, 18), shipped_calendar) == AppealWindow(
        deadline=D(2026, 10, 15), estimated=False
    )


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rule_23_a_decision_before_labour_day_2026_skips_05_01_to_05_05_and_counts_saturday_05_09(
    policies, shipped_calendar, profile_id
):
    # decided Thu 04-30: 05-01..05 off; 05-06..08 (3); Sat 05-09 make-up (4); 05-11..15 (9); 05-18..22 (14);
    # Mon 05-25 (15). Without the make-up Saturday it would be Tue 05-26.
    assert window(policies, profile_id, D(2026, 4, 30), shipped_calendar).deadline == D(2026, 5, 25)


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rule_23_a_decision_on_2026_09_30_starts_counting_on_10_08_after_national_day(
    policies, shipped_calendar, profile_id
):
    # 10-08..09 (2), Sat 10-10 (3), 10-12..16 (8), 10-19..23 (13), 10-26..27 (15)
    assert window(policies, profile_id, D(2026, 9, 30), shipped_calendar).deadline == D(2026, 10, 27)


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rule_23_a_decision_on_2025_12_31_skips_new_year_2026_and_counts_sunday_2026_01_04(
    policies, shipped_calendar, profile_id
):
    # 2026-01-01..03 holiday; Sun 01-04 make-up (1); 01-05..09 (6); 01-12..16 (11); 01-19..22 (15).
    # Both years are known to chinese-calendar: not an estimate.
    assert window(policies, profile_id, D(2025, 12, 31), shipped_calendar) == AppealWindow(
        deadline=D(2026, 1, 22), estimated=False
    )


def test_rule_23_a_window_ending_on_the_eve_of_mid_autumn_2026_is_not_stretched_over_the_holiday(
    hebei, shipped_calendar
):
    # decided Fri 09-04: 09-07..11 (5), 09-14..18 (10), Sun 09-20 (11), 09-21..24 (15) -> Thu 09-24
    assert appeal_window(D(2026, 9, 4), hebei.appeal_window_working_days, shipped_calendar).deadline == D(
        2026, 9, 24
    )


# -- the deadline is inclusive ---------------------------------------------------------------------


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rule_23_the_deadline_is_the_fifteenth_working_day_itself_so_an_appeal_on_it_is_in_time(
    policies, shipped_calendar, profile_id
):
    deadline = window(policies, profile_id, D(2026, 3, 9), shipped_calendar).deadline
    assert deadline == D(2026, 3, 30)
    # an appeal filed on Mon 03-30 is the 15th working day (within); Tue 03-31 would be the 16th (out):
    # a 16-day window would end exactly there, and a 14-day window on Fri 03-27
    assert appeal_window(D(2026, 3, 9), 16, shipped_calendar).deadline == D(2026, 3, 31)
    assert appeal_window(D(2026, 3, 9), 14, shipped_calendar).deadline == D(2026, 3, 27)


def test_rule_23_a_one_working_day_window_from_a_friday_ends_on_the_next_monday(shipped_calendar):
    assert appeal_window(D(2026, 3, 13), 1, shipped_calendar).deadline == D(2026, 3, 16)
    # from Fri 02-13 the next working day is the make-up Saturday 02-14, not Tue 02-24
    assert appeal_window(D(2026, 2, 13), 1, shipped_calendar).deadline == D(2026, 2, 14)


# -- years chinese-calendar does not know ----------------------------------------------------------


def test_rule_23_chinese_calendar_1_11_does_not_know_2027():
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(D(2027, 1, 4))


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rule_23_a_window_running_into_2027_is_estimated_monday_to_friday_minus_new_year_2027_01_01(
    policies, shipped_calendar, profile_id
):
    # decided Sun 2026-12-20: 12-21..25 (5), 12-28..31 (9); Fri 2027-01-01 is in the shipped table;
    # 2027-01-04..08 (14), 01-11 (15)
    assert window(policies, profile_id, D(2026, 12, 20), shipped_calendar) == AppealWindow(
        deadline=D(2027, 1, 11), estimated=True
    )


def test_rule_23_without_an_operator_table_2027_01_01_would_count_as_a_working_day():
    assert appeal_window(D(2026, 12, 20), 15, WorkdayCalendar()) == AppealWindow(
        deadline=D(2027, 1, 8), estimated=True
    )


def test_rule_23_a_window_ending_on_2026_12_31_is_exact_and_one_day_later_it_is_estimated(shipped_calendar):
    # decided Thu 12-10: 12-11 (1), 12-14..18 (6), 12-21..25 (11), 12-28..31 (15)
    assert appeal_window(D(2026, 12, 10), 15, shipped_calendar) == AppealWindow(
        deadline=D(2026, 12, 31), estimated=False
    )
    # decided Fri 12-11: 12-14..31 gives 14; 2027-01-01 is off; Mon 2027-01-04 is the 15th
    assert appeal_window(D(2026, 12, 11), 15, shipped_calendar) == AppealWindow(
        deadline=D(2027, 1, 4), estimated=True
    )


OFFICIAL_2027 = """
[years.2027]
official = true
# a hypothetical schedule: Fri 01-01 and Mon-Tue 01-04..05 off, Saturday 01-09 worked in exchange
holidays = [2027-01-01, 2027-01-04, 2027-01-05]
workdays = [2027-01-09]
"""


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rule_23_an_official_operator_table_for_2027_is_used_exactly_and_the_deadline_is_not_estimated(
    policies, profile_id
):
    calendar = parse_holidays(tomllib.loads(OFFICIAL_2027))
    # decided Sun 2026-12-20: 2026 gives 9; 01-01, 01-04, 01-05 off; 01-06..08 (12); Sat 01-09 (13);
    # 01-11..12 (15)
    assert window(policies, profile_id, D(2026, 12, 20), calendar) == AppealWindow(
        deadline=D(2027, 1, 12), estimated=False
    )


def test_rule_23_the_make_up_saturday_of_an_official_2027_table_is_counted():
    with_saturday = parse_holidays(tomllib.loads(OFFICIAL_2027))
    without_saturday = WorkdayCalendar(
        {2027: HolidayYear(holidays=with_saturday.operator_years[2027].holidays, official=True)}
    )
    assert with_saturday.is_workday(D(2027, 1, 9)) == (True, False)
    assert without_saturday.is_workday(D(2027, 1, 9)) == (False, False)
    assert appeal_window(D(2026, 12, 20), 15, without_saturday).deadline == D(2027, 1, 13)


def test_rule_23_an_unofficial_operator_table_marks_every_2027_answer_as_an_estimate(shipped_calendar):
    assert shipped_calendar.is_workday(D(2027, 1, 1)) == (False, True)
    assert shipped_calendar.is_workday(D(2027, 1, 4)) == (True, True)
    assert shipped_calendar.is_workday(D(2027, 1, 9)) == (False, True)
    assert shipped_calendar.is_workday(D(2026, 10, 10)) == (True, False)


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rule_23_a_window_entirely_within_2026_is_not_estimated(policies, shipped_calendar, profile_id):
    # Mon 01-05 -> Mon 01-26; Thu 06-18 skips Dragon Boat 06-19..21 -> Fri 07-10; Mon 11-30 -> Mon 12-21
    assert [
        window(policies, profile_id, d, shipped_calendar)
        for d in (D(2026, 1, 5), D(2026, 6, 18), D(2026, 11, 30))
    ] == [
        AppealWindow(deadline=D(2026, 1, 26), estimated=False),
        AppealWindow(deadline=D(2026, 7, 10), estimated=False),
        AppealWindow(deadline=D(2026, 12, 21), estimated=False),
    ]


# -- parse_holidays --------------------------------------------------------------------------------


def test_rule_23_parse_holidays_reads_iso_strings_and_toml_dates_alike():
    from_toml = parse_holidays(
        tomllib.loads("[years.2027]\nofficial = true\nholidays = [2027-02-08]\nworkdays = [2027-02-20]\n")
    )
    from_strings = parse_holidays(
        {"years": {"2027": {"official": True, "holidays": ["2027-02-08"], "workdays": ["2027-02-20"]}}}
    )
    expected = WorkdayCalendar(
        {
            2027: HolidayYear(
                holidays=frozenset({D(2027, 2, 8)}), workdays=frozenset({D(2027, 2, 20)}), official=True
            )
        }
    )
    assert from_toml == expected
    assert from_strings == expected


def test_rule_23_parse_holidays_defaults_to_an_unofficial_year_without_days_and_to_no_years():
    assert parse_holidays({"years": {"2028": {}}}) == WorkdayCalendar({2028: HolidayYear()})
    assert parse_holidays({}) == WorkdayCalendar()


def test_rule_23_the_shipped_table_lists_only_2027_01_01_and_is_not_official(shipped_calendar):
    assert shipped_calendar == WorkdayCalendar(
        {2027: HolidayYear(holidays=frozenset({D(2027, 1, 1)}), workdays=frozenset(), official=False)}
    )
