"""Rules 10–17, 25 and 27: measures, suspensions, terminations, and which profile applies."""

from __future__ import annotations

import datetime as dt

import pytest
from rules_builders import (
    HEBEI,
    QINGHAI,
    decision,
    measure_kinds,
    registration,
    reversal,
    suspension_ranges,
)

from points_service.rules.calendar import add_months
from points_service.rules.policy import PolicyError
from points_service.rules.standing import Suspension, Termination, eligibility_on

D = dt.date


def one_point_a_day(total: int, profile: str = HEBEI, start: dt.date = D(2025, 1, 1)):
    """`total` one-point decisions on consecutive days from `start` (entry ids 1..total)."""
    return [decision(i, start + dt.timedelta(days=i - 1), 1, profile) for i in range(1, total + 1)]


# -- rule 10 (hebei-2025): cumulative year total -> tier, measure, suspension months ---------------

# (total, tier, measure of that total, cumulative suspension months)
RULE_10_TABLE = [
    (1, "none", None, 0),
    (2, "none", None, 0),
    (3, "institution_talk", "institution_talk", 0),
    (4, "agency_talk", "agency_talk", 0),
    (5, "agency_talk", "agency_talk", 0),
    (6, "agency_talk", "agency_talk", 0),
    (7, "public_notice", "public_notice", 0),
    (8, "public_notice", "public_notice", 0),
    (9, "suspension", None, 2),
    (10, "suspension", None, 3),
    (11, "suspension", None, 5),
    (12, "termination", None, 0),
    (13, "termination", None, 0),
    (14, "termination", None, 0),
    (15, "termination", None, 0),
]


@pytest.mark.parametrize(("total", "tier", "measure", "months"), RULE_10_TABLE)
def test_rule_10_hebei_profile_maps_each_year_total_to_its_tier_measure_and_months(
    hebei, total, tier, measure, months
):
    assert hebei.cumulative_tier(total) == tier
    assert hebei.measure_for(total) == measure
    assert hebei.cumulative_months(total) == months


# (total, year tier, measures triggered stepping one point at a time, end of the suspension chain)
RULE_10_STEPWISE = [
    (1, "none", [], None),
    (2, "none", [], None),
    (3, "institution_talk", ["institution_talk"], None),
    (4, "agency_talk", ["institution_talk", "agency_talk"], None),
    (5, "agency_talk", ["institution_talk", "agency_talk"], None),
    (6, "agency_talk", ["institution_talk", "agency_talk"], None),
    (7, "public_notice", ["institution_talk", "agency_talk", "public_notice"], None),
    (8, "public_notice", ["institution_talk", "agency_talk", "public_notice"], None),
    # day 9: cumulative 9 -> 2 months from 2025-01-09
    (9, "suspension", ["institution_talk", "agency_talk", "public_notice"], D(2025, 3, 9)),
    # day 10: 3 months due, 1 more queued behind the running term
    (10, "suspension", ["institution_talk", "agency_talk", "public_notice"], D(2025, 4, 9)),
    # day 11: 5 months due, 2 more queued
    (11, "suspension", ["institution_talk", "agency_talk", "public_notice"], D(2025, 6, 9)),
    (12, "termination", ["institution_talk", "agency_talk", "public_notice"], D(2025, 6, 9)),
    (13, "termination", ["institution_talk", "agency_talk", "public_notice"], D(2025, 6, 9)),
    (14, "termination", ["institution_talk", "agency_talk", "public_notice"], D(2025, 6, 9)),
    (15, "termination", ["institution_talk", "agency_talk", "public_notice"], D(2025, 6, 9)),
]


@pytest.mark.parametrize(("total", "tier", "kinds", "chain_end"), RULE_10_STEPWISE)
def test_rule_10_hebei_one_point_at_a_time_reaches_each_row_of_the_table(
    state_of, total, tier, kinds, chain_end
):
    state = state_of(one_point_a_day(total))
    assert state.year(2025).points_total == total
    assert state.year(2025).tier == tier
    assert measure_kinds(state) == kinds
    assert max((s.end for s in state.suspensions), default=None) == chain_end
    assert sum(s.months for s in state.suspensions) == {9: 2, 10: 3}.get(total, 5 if total >= 11 else 0)
    if total >= 12:
        assert [(t.start, t.barred_until, t.bar_years, t.basis) for t in state.terminations] == [
            (D(2025, 1, 12), D(2026, 1, 12), 1, "cumulative")
        ]
    else:
        assert state.terminations == ()


@pytest.mark.parametrize(("total", "measure"), [(t, m) for t, _, m, _ in RULE_10_TABLE if t <= 8])
def test_rule_10_a_first_decision_triggers_the_measure_of_its_total_directly(state_of, total, measure):
    state = state_of([decision(1, "2025-04-01", total)])
    assert measure_kinds(state) == ([measure] if measure else [])
    assert state.suspensions == ()


def test_rule_10_queued_top_ups_of_one_point_steps_have_exact_dates(state_of):
    state = state_of(one_point_a_day(11))
    assert suspension_ranges(state) == [
        (D(2025, 1, 9), D(2025, 3, 9), 2),
        (D(2025, 3, 9), D(2025, 4, 9), 1),
        (D(2025, 4, 9), D(2025, 6, 9), 2),
    ]
    assert [s.basis for s in state.suspensions] == ["cumulative"] * 3
    assert [s.violation_id for s in state.suspensions] == [9, 10, 11]


# -- rule 11 (hebei-2025): one event -> sanction ---------------------------------------------------

RULE_11_TABLE = [(9, 4, D(2025, 7, 15)), (10, 6, D(2025, 9, 15)), (11, 10, D(2026, 1, 15))]


@pytest.mark.parametrize(("points", "months", "end"), RULE_11_TABLE)
def test_rule_11_hebei_single_event_of_9_10_11_points_suspends_4_6_10_months(
    state_of, hebei, points, months, end
):
    assert hebei.single_event_tier(points) == "suspension"
    assert hebei.single_event_months(points) == months
    state = state_of([decision(1, "2025-03-15", points)])
    assert suspension_ranges(state) == [(D(2025, 3, 15), end, months)]
    assert state.suspensions[0].basis == "single_event"
    assert state.year(2025).tier == "suspension"
    assert state.measures == ()
    assert state.terminations == ()


def test_rule_11_hebei_single_event_of_12_points_terminates_with_a_three_year_bar(state_of, hebei):
    assert hebei.single_event_tier(12) == "termination"
    state = state_of([decision(1, "2025-03-15", 12)])
    assert state.terminations == (
        Termination(
            start=D(2025, 3, 15),
            barred_until=D(2028, 3, 15),
            bar_years=3,
            year=2025,
            violation_id=1,
            basis="single_event",
        ),
    )
    assert state.suspensions == ()
    assert state.measures == ()
    assert state.year(2025).tier == "termination"


@pytest.mark.parametrize("points", range(1, 9))
def test_rule_11_single_events_below_9_points_carry_no_sanction_of_their_own(hebei, qinghai, points):
    for policy in (hebei, qinghai):
        assert policy.single_event_tier(points) == "none"
        assert policy.single_event_months(points) == 0


# -- rule 25 (qinghai-2025) ------------------------------------------------------------------------

RULE_25_TABLE = [
    (1, "none", None, 0),
    (2, "none", None, 0),
    (3, "none", None, 0),
    (4, "none", None, 0),
    (5, "none", None, 0),
    (6, "institution_talk", "institution_talk", 0),
    (7, "institution_talk", "institution_talk", 0),
    (8, "institution_talk", "institution_talk", 0),
    (9, "suspension", None, 3),
    (10, "suspension", None, 4),
    (11, "suspension", None, 5),
    (12, "termination", None, 0),
    (13, "termination", None, 0),
]


@pytest.mark.parametrize(("total", "tier", "measure", "months"), RULE_25_TABLE)
def test_rule_25_qinghai_profile_maps_each_year_total_to_its_tier_measure_and_months(
    qinghai, total, tier, measure, months
):
    assert qinghai.cumulative_tier(total) == tier
    assert qinghai.measure_for(total) == measure
    assert qinghai.cumulative_months(total) == months


@pytest.mark.parametrize(("total", "tier", "months"), [(t, tier, m) for t, tier, _, m in RULE_25_TABLE])
def test_rule_25_qinghai_one_point_at_a_time_reaches_each_row(state_of, total, tier, months):
    state = state_of(one_point_a_day(total, QINGHAI))
    assert state.year(2025).tier == tier
    assert measure_kinds(state) == (["institution_talk"] if total >= 6 else [])
    assert sum(s.months for s in state.suspensions) == (5 if total >= 11 else months)
    expected_chain_end = {9: D(2025, 4, 9), 10: D(2025, 5, 9)}.get(
        total, D(2025, 6, 9) if total >= 11 else None
    )
    assert max((s.end for s in state.suspensions), default=None) == expected_chain_end
    if total >= 12:
        assert [(t.start, t.barred_until, t.bar_years) for t in state.terminations] == [
            (D(2025, 1, 12), D(2026, 1, 12), 1)
        ]
    else:
        assert state.terminations == ()


@pytest.mark.parametrize(
    ("points", "months", "end"), [(9, 3, D(2025, 6, 15)), (10, 4, D(2025, 7, 15)), (11, 5, D(2025, 8, 15))]
)
def test_rule_25_qinghai_single_events_of_9_10_11_suspend_3_4_5_months(
    state_of, qinghai, points, months, end
):
    assert qinghai.single_event_months(points) == months
    state = state_of([decision(1, "2025-03-15", points, QINGHAI)])
    assert suspension_ranges(state) == [(D(2025, 3, 15), end, months)]
    assert state.measures == ()


def test_rule_25_qinghai_single_event_of_12_terminates_with_a_three_year_bar(state_of):
    state = state_of([decision(1, "2025-03-15", 12, QINGHAI)])
    assert [(t.start, t.barred_until, t.bar_years, t.basis) for t in state.terminations] == [
        (D(2025, 3, 15), D(2028, 3, 15), 3, "single_event")
    ]


# -- rule 12: the more severe of cumulative and single event ---------------------------------------


def test_three_then_nine_points_terminate_with_a_one_year_bar(state_of):
    """Rule 12 example: cumulative 12 wins over the single-event 9 (which alone would be 4 months)."""
    state = state_of([decision(1, "2025-02-01", 3), decision(2, "2025-05-20", 9)])
    assert state.terminations == (
        Termination(
            start=D(2025, 5, 20),
            barred_until=D(2026, 5, 20),
            bar_years=1,
            year=2025,
            violation_id=2,
            basis="cumulative",
        ),
    )
    assert state.suspensions == ()
    assert measure_kinds(state) == ["institution_talk"]
    assert state.triggered_by(2) == [state.terminations[0]]
    assert state.year(2025).tier == "termination"


def test_nine_points_alone_would_only_suspend_for_four_months(state_of):
    """The contrast in the rule 12 example."""
    state = state_of([decision(2, "2025-05-20", 9)])
    assert suspension_ranges(state) == [(D(2025, 5, 20), D(2025, 9, 20), 4)]
    assert state.terminations == ()


def test_rule_12_a_single_twelve_on_top_of_earlier_points_gets_the_three_year_bar(state_of):
    state = state_of([decision(1, "2025-02-01", 3), decision(2, "2025-05-20", 12)])
    assert [(t.start, t.barred_until, t.bar_years, t.basis) for t in state.terminations] == [
        (D(2025, 5, 20), D(2028, 5, 20), 3, "single_event")
    ]


def test_rule_12_qinghai_three_then_nine_also_terminates_with_a_one_year_bar(state_of):
    state = state_of([decision(1, "2025-02-01", 3, QINGHAI), decision(2, "2025-05-20", 9, QINGHAI)])
    assert [(t.start, t.barred_until, t.bar_years, t.basis) for t in state.terminations] == [
        (D(2025, 5, 20), D(2026, 5, 20), 1, "cumulative")
    ]
    assert state.suspensions == ()


def test_rule_12_the_longer_of_the_cumulative_and_single_event_terms_applies(state_of):
    """2 then a single 9: cumulative 11 = 5 months beats 4; 1 then a single 9: 4 months beats cumulative 3."""
    state = state_of([decision(1, "2025-02-01", 2), decision(2, "2025-03-01", 9)])
    assert suspension_ranges(state) == [(D(2025, 3, 1), D(2025, 8, 1), 5)]
    assert state.suspensions[0].basis == "cumulative"
    state = state_of([decision(1, "2025-02-01", 1), decision(2, "2025-03-01", 9)])
    assert suspension_ranges(state) == [(D(2025, 3, 1), D(2025, 7, 1), 4)]
    assert state.suspensions[0].basis == "single_event"


def test_after_a_termination_later_decisions_that_year_add_no_suspension(state_of):
    state = state_of(
        [decision(1, "2025-02-01", 3), decision(2, "2025-05-20", 9), decision(3, "2025-08-01", 11)]
    )
    assert state.suspensions == ()
    assert len(state.terminations) == 1
    assert state.triggered_by(3) == []
    assert state.year(2025).points_total == 23


def test_a_cumulative_twelve_after_a_single_twelve_in_the_same_year_adds_nothing(state_of):
    state = state_of([decision(1, "2025-03-01", 12), decision(2, "2025-04-01", 1)])
    assert [(t.start, t.barred_until) for t in state.terminations] == [(D(2025, 3, 1), D(2028, 3, 1))]
    assert state.triggered_by(2) == []


# -- rule 13: measures once per tier per year ------------------------------------------------------


def test_rule_13_one_point_three_times_triggers_the_institution_talk_on_the_third(state_of):
    state = state_of(
        [decision(1, "2025-01-05", 1), decision(2, "2025-02-05", 1), decision(3, "2025-03-05", 1)]
    )
    assert [(m.kind, m.year, m.triggered_on, m.violation_id) for m in state.measures] == [
        ("institution_talk", 2025, D(2025, 3, 5), 3)
    ]


def test_rule_13_three_then_one_triggers_the_institution_talk_then_the_agency_talk(state_of):
    """hebei rule 10: total 3 is institution_talk, total 4 is agency_talk — each tier once."""
    state = state_of([decision(1, "2025-01-05", 3), decision(2, "2025-02-05", 1)])
    assert [(m.kind, m.triggered_on, m.violation_id) for m in state.measures] == [
        ("institution_talk", D(2025, 1, 5), 1),
        ("agency_talk", D(2025, 2, 5), 2),
    ]


@pytest.mark.parametrize(
    ("first", "second", "kind"), [(4, 2, "agency_talk"), (7, 1, "public_notice"), (5, 1, "agency_talk")]
)
def test_rule_13_a_tier_already_reached_that_year_is_not_triggered_again(state_of, first, second, kind):
    state = state_of([decision(1, "2025-01-05", first), decision(2, "2025-02-05", second)])
    assert [(m.kind, m.violation_id) for m in state.measures] == [(kind, 1)]
    assert state.triggered_by(2) == []


def test_rule_13_qinghai_six_then_one_triggers_one_institution_talk(state_of):
    state = state_of([decision(1, "2025-01-05", 6, QINGHAI), decision(2, "2025-02-05", 1, QINGHAI)])
    assert [(m.kind, m.violation_id) for m in state.measures] == [("institution_talk", 1)]


def test_rule_13_two_then_two_triggers_only_the_agency_talk_skipping_the_institution_talk(state_of):
    state = state_of([decision(1, "2025-01-05", 2), decision(2, "2025-02-05", 2)])
    assert [(m.kind, m.violation_id) for m in state.measures] == [("agency_talk", 2)]


def test_rule_13_two_then_five_triggers_only_the_public_notice(state_of):
    """Total 7 is public_notice in hebei-2025; the two lower tiers are skipped."""
    state = state_of([decision(1, "2025-01-05", 2), decision(2, "2025-02-05", 5)])
    assert [(m.kind, m.violation_id) for m in state.measures] == [("public_notice", 2)]


def test_rule_13_a_new_year_triggers_the_same_tier_again(state_of):
    state = state_of([decision(1, "2025-06-01", 3), decision(2, "2026-01-01", 3)])
    assert [(m.kind, m.year, m.triggered_on) for m in state.measures] == [
        ("institution_talk", 2025, D(2025, 6, 1)),
        ("institution_talk", 2026, D(2026, 1, 1)),
    ]


def test_rule_13_reaching_suspension_creates_a_sanction_not_a_measure(state_of):
    state = state_of([decision(1, "2025-01-05", 8), decision(2, "2025-02-05", 1)])
    assert measure_kinds(state) == ["public_notice"]
    assert state.triggered_by(2) == [state.suspensions[0]]
    assert state.year(2025).tier == "suspension"


def test_rule_13_nine_points_at_once_trigger_no_talk_or_notice(state_of):
    state = state_of([decision(1, "2025-01-05", 9)])
    assert state.measures == ()
    assert state.year(2025).tier == "suspension"


# -- rule 14: top-up within a year -----------------------------------------------------------------


def test_six_then_three_points_suspend_two_months_and_one_more_point_adds_one_month(state_of):
    state = state_of([decision(1, "2025-01-10", 6), decision(2, "2025-02-01", 3)])
    assert suspension_ranges(state) == [(D(2025, 2, 1), D(2025, 4, 1), 2)]
    state = state_of(
        [decision(1, "2025-01-10", 6), decision(2, "2025-02-01", 3), decision(3, "2025-06-01", 1)]
    )
    assert suspension_ranges(state) == [(D(2025, 2, 1), D(2025, 4, 1), 2), (D(2025, 6, 1), D(2025, 7, 1), 1)]
    assert state.triggered_by(3) == [state.suspensions[1]]


def test_a_single_nine_suspends_four_months_and_one_more_point_adds_nothing(state_of):
    state = state_of([decision(1, "2025-02-01", 9), decision(2, "2025-07-01", 1)])
    assert suspension_ranges(state) == [(D(2025, 2, 1), D(2025, 6, 1), 4)]
    assert state.triggered_by(2) == []
    assert state.year(2025).points_total == 10


def test_rule_14_a_later_single_event_adds_only_the_difference_to_its_longer_term(state_of):
    """1 then a single 9: total 10, max(cumulative 3, single 4) = 4 months.

    +1: cumulative 11 is 5 months, so 1 more month."""
    state = state_of(
        [decision(1, "2025-01-10", 1), decision(2, "2025-02-01", 9), decision(3, "2025-09-01", 1)]
    )
    assert suspension_ranges(state) == [(D(2025, 2, 1), D(2025, 6, 1), 4), (D(2025, 9, 1), D(2025, 10, 1), 1)]
    assert [s.basis for s in state.suspensions] == ["single_event", "cumulative"]


# -- rule 15: start on the decision date or at the end of the chain; month clamping ----------------


@pytest.mark.parametrize(("year", "expected"), [(2026, D(2026, 2, 28)), (2028, D(2028, 2, 29))])
def test_rule_15_january_31_plus_one_month_clamps_to_the_end_of_february(year, expected):
    assert add_months(D(year, 1, 31), 1) == expected


@pytest.mark.parametrize(("year", "expected_end"), [(2025, D(2026, 2, 28)), (2027, D(2028, 2, 29))])
def test_rule_15_a_two_month_suspension_from_december_31_ends_on_the_last_day_of_february(
    state_of, year, expected_end
):
    state = state_of([decision(1, D(year, 12, 31), 6), decision(2, D(year, 12, 31), 3)])
    assert suspension_ranges(state) == [(D(year, 12, 31), expected_end, 2)]


@pytest.mark.parametrize(("year", "expected_end"), [(2025, D(2026, 2, 28)), (2027, D(2028, 2, 29))])
def test_rule_15_a_one_month_term_queued_on_january_31_ends_on_the_last_day_of_february(
    state_of, year, expected_end
):
    """qinghai: single 9 on Oct 31 = 3 months to Jan 31; +1 point -> 4 months due, 1 queued from Jan 31."""
    state = state_of([decision(1, D(year, 10, 31), 9, QINGHAI), decision(2, D(year, 11, 10), 1, QINGHAI)])
    assert suspension_ranges(state) == [
        (D(year, 10, 31), D(year + 1, 1, 31), 3),
        (D(year + 1, 1, 31), expected_end, 1),
    ]


def test_rule_15_a_suspension_is_half_open_so_the_person_is_eligible_again_on_its_end(state_of):
    state = state_of(
        [decision(1, "2025-12-31", 6), decision(2, "2025-12-31", 3)],
        registrations=[registration(1, "2024-01-01")],
    )
    assert eligibility_on(state, D(2025, 12, 30)).status == "active"
    assert eligibility_on(state, D(2025, 12, 31)).status == "suspended"
    assert eligibility_on(state, D(2026, 2, 27)).status == "suspended"
    on_end = eligibility_on(state, D(2026, 2, 28))
    assert (on_end.eligible, on_end.status) == (True, "active")


def test_rule_15_a_top_up_during_a_running_suspension_is_queued_after_it(state_of):
    state = state_of(
        [decision(1, "2025-01-10", 6), decision(2, "2025-02-01", 3), decision(3, "2025-02-15", 1)]
    )
    assert suspension_ranges(state) == [(D(2025, 2, 1), D(2025, 4, 1), 2), (D(2025, 4, 1), D(2025, 5, 1), 1)]
    assert state.suspensions[1].violation_id == 3


def test_rule_15_an_extra_point_that_reaches_the_threshold_earlier_also_ends_the_term_earlier(state_of):
    """8 points, then 1 on Feb 2: [Feb 2, Apr 2).

    With one more point on Jan 1 the 2 months start on Jan 1 and the Feb 2 point tops up 1 month
    queued behind them: [Jan 1, Apr 1) — 3 months, ending a day earlier."""
    ledger = [decision(1, "2026-01-01", 8), decision(2, "2026-02-02", 1)]
    assert suspension_ranges(state_of(ledger)) == [(D(2026, 2, 2), D(2026, 4, 2), 2)]
    state = state_of([*ledger, decision(3, "2026-01-01", 1)])
    assert suspension_ranges(state) == [(D(2026, 1, 1), D(2026, 3, 1), 2), (D(2026, 3, 1), D(2026, 4, 1), 1)]


# -- rule 16: suspensions cross 1 January although points reset -------------------------------------


def test_rule_16_a_suspension_decided_on_december_1_runs_into_the_next_year(state_of):
    state = state_of([decision(1, "2026-12-01", 9)], registrations=[registration(1, "2024-01-01")])
    assert suspension_ranges(state) == [(D(2026, 12, 1), D(2027, 4, 1), 4)]
    assert state.year(2027).points_total == 0
    assert state.year(2027).tier == "none"
    assert eligibility_on(state, D(2027, 3, 31)).status == "suspended"
    assert eligibility_on(state, D(2027, 3, 31)).until == D(2027, 4, 1)
    assert eligibility_on(state, D(2027, 4, 1)).status == "active"


def test_rule_16_a_new_year_suspension_queues_behind_last_years_term_with_points_reset(state_of):
    state = state_of(
        [decision(1, "2026-12-01", 9), decision(2, "2027-01-10", 6), decision(3, "2027-01-11", 3)]
    )
    # 2027 total is 9, not 18: two months, queued after the term from 2026
    assert state.year(2027).points_total == 9
    assert state.terminations == ()
    assert suspension_ranges(state) == [(D(2026, 12, 1), D(2027, 4, 1), 4), (D(2027, 4, 1), D(2027, 6, 1), 2)]
    assert [s.year for s in state.suspensions] == [2026, 2027]


# -- rule 17: termination dates, bars, re-registration ---------------------------------------------


def terminated_on_2025_05_20(state_of, *registrations):
    return state_of(
        [decision(1, "2025-02-01", 3), decision(2, "2025-05-20", 9)], registrations=list(registrations)
    )


def test_rule_17_termination_ends_open_registrations_on_its_date(state_of):
    state = terminated_on_2025_05_20(
        state_of,
        registration(1, "2024-01-01"),
        registration(2, "2024-06-01", "2025-12-31", institution="H0002"),
        registration(3, "2024-01-01", "2025-03-01", institution="H0003"),
    )
    spans = {s.registration_id: (s.end, s.ended_by, s.termination_violation_id) for s in state.registrations}
    assert spans == {
        1: (D(2025, 5, 20), "termination", 2),
        2: (D(2025, 5, 20), "termination", 2),
        3: (D(2025, 3, 1), "registry", None),
    }
    assert eligibility_on(state, D(2025, 5, 19)).status == "active"
    terminated = eligibility_on(state, D(2025, 5, 20))
    assert (terminated.eligible, terminated.status, terminated.barred_until) == (
        False,
        "terminated",
        D(2026, 5, 20),
    )


def test_rule_17_a_registration_starting_on_barred_until_restores_eligibility(state_of):
    state = terminated_on_2025_05_20(state_of, registration(1, "2024-01-01"), registration(2, "2026-05-20"))
    assert state.barred_until == D(2026, 5, 20)
    assert eligibility_on(state, D(2026, 5, 19)).status == "terminated"
    back = eligibility_on(state, D(2026, 5, 20))
    assert (back.eligible, back.status) == (True, "active")


def test_rule_17_a_registration_starting_inside_the_bar_is_void(state_of):
    state = terminated_on_2025_05_20(state_of, registration(1, "2024-01-01"), registration(2, "2026-05-19"))
    span = next(s for s in state.registrations if s.registration_id == 2)
    assert (span.start, span.end, span.void, span.ended_by) == (
        D(2026, 5, 19),
        D(2026, 5, 19),
        True,
        "termination",
    )
    assert eligibility_on(state, D(2026, 6, 1)).status == "terminated"


def test_rule_17_without_a_new_registration_the_termination_lasts_past_the_bar(state_of):
    state = terminated_on_2025_05_20(state_of, registration(1, "2024-01-01"))
    assert eligibility_on(state, D(2027, 1, 1)).status == "terminated"


def test_rule_17_a_termination_in_a_later_year_extends_the_bar_to_its_own_date(state_of):
    state = state_of(
        [
            decision(1, "2025-02-01", 3),
            decision(2, "2025-05-20", 9),
            decision(3, "2026-03-01", 6),
            decision(4, "2026-04-01", 6),
        ]
    )
    assert [(t.start, t.barred_until, t.year) for t in state.terminations] == [
        (D(2025, 5, 20), D(2026, 5, 20), 2025),
        (D(2026, 4, 1), D(2027, 4, 1), 2026),
    ]
    assert state.barred_until == D(2027, 4, 1)


def test_rule_17_a_single_twelve_after_a_cumulative_termination_that_year_gives_a_three_year_bar(state_of):
    state = state_of(
        [decision(1, "2025-02-01", 3), decision(2, "2025-05-20", 9), decision(3, "2025-08-01", 12)]
    )
    assert [(t.start, t.barred_until, t.bar_years, t.basis) for t in state.terminations] == [
        (D(2025, 5, 20), D(2026, 5, 20), 1, "cumulative"),
        (D(2025, 8, 1), D(2028, 8, 1), 3, "single_event"),
    ]
    assert state.barred_until == D(2028, 8, 1)


def test_rule_17_a_later_termination_with_an_earlier_bar_keeps_the_later_bar(state_of):
    state = state_of(
        [decision(1, "2025-01-10", 12), decision(2, "2026-03-01", 6), decision(3, "2026-03-02", 6)]
    )
    assert [t.barred_until for t in state.terminations] == [D(2028, 1, 10), D(2027, 3, 2)]
    assert state.barred_until == D(2028, 1, 10)


@pytest.mark.parametrize(
    ("points", "expected_bar"),
    [(12, D(2031, 2, 28)), (1, D(2029, 2, 28))],
    ids=["single-12", "cumulative-12"],
)
def test_rule_17_a_bar_from_february_29_clamps_to_february_28(state_of, points, expected_bar):
    ledger = [decision(2, "2028-02-29", points)]
    if points == 1:
        ledger.insert(0, decision(1, "2028-01-05", 11))
    state = state_of(ledger)
    assert [(t.start, t.barred_until) for t in state.terminations] == [(D(2028, 2, 29), expected_bar)]


def test_rule_17_terminated_wins_over_a_running_suspension(state_of):
    state = state_of(
        [decision(1, "2025-01-10", 6), decision(2, "2025-02-01", 3), decision(3, "2025-03-01", 3)],
        registrations=[registration(1, "2024-01-01")],
    )
    assert suspension_ranges(state) == [(D(2025, 2, 1), D(2025, 4, 1), 2)]
    assert eligibility_on(state, D(2025, 2, 15)).status == "suspended"
    assert eligibility_on(state, D(2025, 3, 15)).status == "terminated"


# -- rule 27: which profile applies; totals accumulate across provinces -----------------------------


@pytest.mark.parametrize(
    ("region", "expected"),
    [("130100", HEBEI), ("139900", HEBEI), ("630100", QINGHAI), ("110000", HEBEI), ("440300", HEBEI)],
)
def test_rule_27_the_province_of_the_institution_picks_the_profile_else_the_default(
    policies, region, expected
):
    assert policies.profile_for(region, D(2025, 1, 1)).id == expected
    assert policies.profile_for(region, D(2027, 6, 30)).id == expected


@pytest.mark.parametrize("region", ["130100", "630100", "110000"])
def test_rule_27_no_profile_is_in_force_before_2025_01_01(policies, region):
    with pytest.raises(PolicyError) as caught:
        policies.profile_for(region, D(2024, 12, 31))
    assert caught.value.rule == "docs/rules.md rule 27"
    assert caught.value.field == "decided_on"


def test_rule_27_totals_accumulate_across_provinces_each_decision_judged_by_its_own_profile(state_of):
    # hebei 5 then qinghai 4: total 9, judged by qinghai -> 3 months
    state = state_of([decision(1, "2025-02-01", 5, HEBEI), decision(2, "2025-03-01", 4, QINGHAI)])
    assert state.year(2025).points_total == 9
    assert measure_kinds(state) == ["agency_talk"]
    assert suspension_ranges(state) == [(D(2025, 3, 1), D(2025, 6, 1), 3)]
    # qinghai 5 then hebei 4: total 9, judged by hebei -> 2 months
    state = state_of([decision(1, "2025-02-01", 5, QINGHAI), decision(2, "2025-03-01", 4, HEBEI)])
    assert state.year(2025).points_total == 9
    assert measure_kinds(state) == []
    assert suspension_ranges(state) == [(D(2025, 3, 1), D(2025, 5, 1), 2)]


def test_rule_27_a_qinghai_five_then_a_hebei_one_triggers_the_hebei_agency_talk(state_of):
    state = state_of([decision(1, "2025-02-01", 5, QINGHAI), decision(2, "2025-03-01", 1, HEBEI)])
    assert [(m.kind, m.violation_id) for m in state.measures] == [("agency_talk", 2)]


def test_rules_5_and_15_a_term_decided_in_another_province_queues_behind_the_running_one(state_of):
    state = state_of([decision(1, "2025-11-01", 9, HEBEI), decision(2, "2026-01-05", 9, QINGHAI)])
    assert state.suspensions == (
        Suspension(D(2025, 11, 1), D(2026, 3, 1), 4, 2025, 1, "single_event"),
        Suspension(D(2026, 3, 1), D(2026, 6, 1), 3, 2026, 2, "single_event"),
    )


# -- rule 24: an amended decision keeps its place among the decisions of its day ----------------------


def test_rule_24_an_amended_decision_keeps_its_place_among_decisions_of_the_same_day(state_of):
    # A (4 points, entry 1) then B (3 points, entry 2) on one day; A is amended to 5: a reversal of
    # entry 1 (entry 3) and a new decision entry for A (entry 4). A still comes first: 5 -> agency
    # talk for A, 8 -> public notice for B.
    ledger = [
        decision(1, "2026-04-10", 4, violation_id=101),
        decision(2, "2026-04-10", 3, violation_id=102),
        decision(4, "2026-04-10", 5, violation_id=101),
    ]
    state = state_of(ledger, reversals=[reversal(3, 1, "2026-05-01")])
    assert [(m.kind, m.violation_id) for m in state.measures] == [
        ("agency_talk", 101),
        ("public_notice", 102),
    ]
    assert state.year(2026).points_total == 8
    assert state.decisions == (101, 102)


# -- the fewest points that suspend (the statistics read sanction tiers only from there) ----------


@pytest.mark.parametrize(("profile", "floor"), [(HEBEI, 9), (QINGHAI, 9)])
def test_below_the_lowest_sanction_points_no_total_or_event_suspends_or_terminates(policies, profile, floor):
    policy = policies.get(profile)
    assert policy.lowest_sanction_points() == floor
    for points in range(floor):
        assert policy.cumulative_tier(points) not in ("suspension", "termination"), points
        assert policy.single_event_tier(points) == "none", points
    assert "suspension" in (policy.cumulative_tier(floor), policy.single_event_tier(floor))
