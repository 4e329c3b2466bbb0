"""Rules 19–22 and 26: repair credits, caps, and shortening of the term in effect."""

from __future__ import annotations

import datetime as dt

import pytest
from rules_builders import HEBEI, QINGHAI, decision, measure_kinds, registration, repair, suspension_ranges

from points_service.rules.standing import eligibility_on, repair_credit_for

D = dt.date


def credits(state) -> list[int]:
    return [r.points for r in state.repairs]


def approvals(activities, start: dt.date, profile: str = HEBEI, first_entry: int = 100):
    """One approval a day from `start`, entry ids from `first_entry`."""
    return [
        repair(first_entry + i, start + dt.timedelta(days=i), activity, profile)
        for i, activity in enumerate(activities)
    ]


# -- rule 20 and 26: credit per activity -----------------------------------------------------------

RULE_20_AND_26_CREDITS = [
    (HEBEI, "online_study", 1),
    (HEBEI, "offline_training", 2),
    (HEBEI, "policy_promotion", 1),
    (HEBEI, "inspection_participation", 1),
    (QINGHAI, "online_study", 1),
    (QINGHAI, "offline_training", 1),
    (QINGHAI, "policy_promotion", 1),
    (QINGHAI, "inspection_participation", 1),
]


@pytest.mark.parametrize(("profile_id", "activity", "credit"), RULE_20_AND_26_CREDITS)
def test_rules_20_and_26_each_activity_removes_its_credit_from_the_year_total(
    state_of, profile_id, activity, credit
):
    state = state_of(
        [decision(1, "2025-02-01", 5, profile_id)], repairs=[repair(2, "2025-03-01", activity, profile_id)]
    )
    assert credits(state) == [credit]
    assert state.repairs[0].year == 2025
    assert state.year(2025).points_repaired == credit
    assert state.year(2025).points_total == 5 - credit


@pytest.mark.parametrize(("profile_id", "activity", "credit"), RULE_20_AND_26_CREDITS)
def test_rules_20_and_26_repair_credit_for_gives_the_full_credit_without_a_limiting_reason(
    policies, profile_id, activity, credit
):
    assert repair_credit_for(
        activity=activity,
        total=5,
        repaired=0,
        max_single=5,
        repaired_by_activity={},
        policy=policies.get(profile_id),
    ) == (credit, None)


@pytest.mark.parametrize("profile_id", [HEBEI, QINGHAI])
def test_rule_20_seven_online_study_approvals_credit_only_six_points(state_of, profile_id):
    state = state_of(
        [decision(1, "2025-01-10", 8, profile_id)],
        repairs=approvals(["online_study"] * 7, D(2025, 2, 1), profile_id),
    )
    assert credits(state) == [1, 1, 1, 1, 1, 1, 0]
    assert state.year(2025).points_repaired == 6
    assert state.year(2025).points_total == 2


def test_rule_20_hebei_offline_training_is_cut_to_what_is_left_of_the_yearly_cap(state_of, hebei):
    state = state_of(
        [decision(1, "2025-01-10", 8)],
        repairs=approvals(
            ["online_study", "offline_training", "offline_training", "offline_training"], D(2025, 2, 1)
        ),
    )
    assert credits(state) == [1, 2, 2, 1]
    assert repair_credit_for(
        activity="offline_training", total=3, repaired=5, max_single=8, repaired_by_activity={}, policy=hebei
    ) == (1, "docs/rules.md rule 20: at most 6 points a year")


def test_rule_20_the_yearly_cap_starts_again_in_a_new_year(state_of):
    state = state_of(
        [decision(1, "2025-01-10", 8), decision(2, "2026-01-10", 8)],
        repairs=approvals(["online_study"] * 7, D(2025, 2, 1))
        + approvals(["online_study"] * 2, D(2026, 2, 1), first_entry=200),
    )
    assert credits(state) == [1, 1, 1, 1, 1, 1, 0, 1, 1]
    assert (state.year(2025).points_repaired, state.year(2026).points_repaired) == (6, 2)


def test_rule_26_qinghai_promotion_and_inspection_together_credit_at_most_two_points(state_of, qinghai):
    state = state_of(
        [decision(1, "2025-01-10", 8, QINGHAI)],
        repairs=approvals(["policy_promotion"] * 3 + ["online_study"], D(2025, 2, 1), QINGHAI),
    )
    assert credits(state) == [1, 1, 0, 1]
    state = state_of(
        [decision(1, "2025-01-10", 8, QINGHAI)],
        repairs=approvals(
            ["policy_promotion", "inspection_participation", "inspection_participation"],
            D(2025, 2, 1),
            QINGHAI,
        ),
    )
    assert credits(state) == [1, 1, 0]
    assert repair_credit_for(
        activity="inspection_participation",
        total=6,
        repaired=2,
        max_single=8,
        repaired_by_activity={"policy_promotion": 2},
        policy=qinghai,
    ) == (0, "docs/rules.md rule 26: at most 2 points a year from these activities")


def test_rule_20_hebei_has_no_cap_per_kind_of_activity(state_of):
    state = state_of(
        [decision(1, "2025-01-10", 8)], repairs=approvals(["policy_promotion"] * 3, D(2025, 2, 1))
    )
    assert credits(state) == [1, 1, 1]


# -- rule 21: only recorded points, never below zero, single-event 12 -------------------------------


def test_rule_21_a_repair_with_one_point_recorded_credits_one_point(state_of, hebei):
    state = state_of(
        [decision(1, "2025-01-10", 1)], repairs=approvals(["offline_training", "online_study"], D(2025, 2, 1))
    )
    assert credits(state) == [1, 0]
    assert state.year(2025).points_total == 0
    assert repair_credit_for(
        activity="offline_training", total=1, repaired=0, max_single=1, repaired_by_activity={}, policy=hebei
    ) == (1, "docs/rules.md rule 21: only points already recorded this year, never below zero")


def test_rule_21_a_repair_cannot_offset_future_points(state_of):
    state = state_of([decision(1, "2025-03-01", 3)], repairs=[repair(2, "2025-02-01", "offline_training")])
    assert credits(state) == [0]
    assert state.year(2025).points_total == 3
    assert measure_kinds(state) == ["institution_talk"]


def test_rule_21_a_repair_removes_points_of_its_approval_year_only(state_of):
    state = state_of([decision(1, "2025-11-01", 5)], repairs=[repair(2, "2026-01-05", "offline_training")])
    assert credits(state) == [0]
    assert state.repairs[0].year == 2026
    assert state.year(2025).points_total == 5


@pytest.mark.parametrize("profile_id", [HEBEI, QINGHAI])
def test_rules_21_and_26_a_year_holding_a_single_event_twelve_cannot_be_repaired(
    state_of, policies, profile_id
):
    state = state_of(
        [decision(1, "2025-05-20", 12, profile_id)],
        repairs=approvals(["online_study", "offline_training", "online_study"], D(2025, 6, 1), profile_id),
    )
    assert credits(state) == [0, 0, 0]
    assert state.year(2025).points_total == 12
    assert [(t.barred_until, t.shortened_by_months) for t in state.terminations] == [(D(2028, 5, 20), 0)]
    assert repair_credit_for(
        activity="online_study",
        total=12,
        repaired=0,
        max_single=12,
        repaired_by_activity={},
        policy=policies.get(profile_id),
    ) == (0, "docs/rules.md rule 21: a year that holds a single-event 12 cannot be repaired")


def test_rule_21_a_year_with_a_cumulative_twelve_can_be_repaired(state_of):
    state = state_of(
        [decision(1, "2025-01-10", 6), decision(2, "2025-02-10", 6)],
        repairs=[repair(3, "2025-03-01", "online_study")],
    )
    assert credits(state) == [1]


def test_rule_21_measures_stay_triggered_and_the_tier_is_not_lowered_by_repair(state_of):
    state = state_of(
        [decision(1, "2025-01-10", 4), decision(2, "2025-05-01", 2)],
        repairs=approvals(["offline_training", "online_study"], D(2025, 2, 1)),
    )
    # 4 -> agency_talk; repaired to 1; +2 = 3 is institution_talk, a lower tier: nothing new
    assert [(m.kind, m.violation_id) for m in state.measures] == [("agency_talk", 1)]
    assert state.year(2025).points_total == 3
    assert state.year(2025).tier == "agency_talk"


def test_rule_21_later_violations_start_from_the_repaired_total(state_of):
    state = state_of(
        [decision(1, "2025-01-10", 8), decision(2, "2025-03-01", 3)],
        repairs=[repair(3, "2025-02-01", "offline_training")],
    )
    # 8 - 2 + 3 = 9: two months (without the repair 11 would be five months)
    assert suspension_ranges(state) == [(D(2025, 3, 1), D(2025, 5, 1), 2)]
    assert measure_kinds(state) == ["public_notice"]


# -- rule 22: every 3 points shorten the term in effect by a month ----------------------------------


def nine_on_march_1(profile: str = HEBEI):
    return [decision(1, "2025-03-01", 6, profile), decision(2, "2025-03-01", 3, profile)]


def test_rule_22_three_repaired_points_shorten_a_running_suspension_by_one_month(state_of):
    state = state_of(
        nine_on_march_1(), repairs=approvals(["offline_training", "online_study"], D(2025, 3, 10))
    )
    assert suspension_ranges(state) == [(D(2025, 3, 1), D(2025, 4, 1), 2)]
    assert state.suspensions[0].shortened_by_months == 1
    assert [(r.points, r.months_shortened, r.shortened) for r in state.repairs] == [
        (2, 0, None),
        (1, 1, "suspension"),
    ]


def test_rule_22_qinghai_three_single_point_repairs_shorten_by_one_month(state_of):
    state = state_of(
        nine_on_march_1(QINGHAI), repairs=approvals(["online_study"] * 3, D(2025, 3, 10), QINGHAI)
    )
    assert suspension_ranges(state) == [(D(2025, 3, 1), D(2025, 5, 1), 3)]
    assert [r.months_shortened for r in state.repairs] == [0, 0, 1]


def test_rule_22_shortening_never_ends_a_suspension_before_the_approval_date(state_of):
    state = state_of(
        nine_on_march_1(),
        repairs=[repair(3, "2025-04-15", "offline_training"), repair(4, "2025-04-20", "online_study")],
        registrations=[registration(1, "2024-01-01")],
    )
    assert suspension_ranges(state) == [(D(2025, 3, 1), D(2025, 4, 20), 2)]
    assert eligibility_on(state, D(2025, 4, 19)).status == "suspended"
    assert eligibility_on(state, D(2025, 4, 20)).status == "active"


def queued_chain():
    """hebei single 9 on 2025-11-01: [2025-11-01, 2026-03-01); 2026 total 9 queues [03-01, 05-01)."""
    return [decision(1, "2025-11-01", 9), decision(2, "2026-01-05", 6), decision(3, "2026-01-06", 3)]


def test_rule_22_a_queued_suspension_is_trimmed_from_the_end_of_the_chain(state_of):
    state = state_of(
        queued_chain(),
        repairs=approvals(["offline_training", "online_study"], D(2026, 1, 10)),
        registrations=[registration(1, "2024-01-01")],
    )
    assert suspension_ranges(state) == [
        (D(2025, 11, 1), D(2026, 3, 1), 4),
        (D(2026, 3, 1), D(2026, 4, 1), 2),
    ]
    assert [s.shortened_by_months for s in state.suspensions] == [0, 1]
    assert eligibility_on(state, D(2026, 1, 20)).until == D(2026, 4, 1)


def test_rule_22_six_repaired_points_remove_a_whole_queued_segment(state_of):
    state = state_of(
        queued_chain(),
        repairs=approvals(
            ["offline_training", "online_study", "offline_training", "online_study"], D(2026, 1, 10)
        ),
        registrations=[registration(1, "2024-01-01")],
    )
    assert suspension_ranges(state) == [(D(2025, 11, 1), D(2026, 3, 1), 4)]
    assert [r.months_shortened for r in state.repairs] == [0, 1, 0, 1]
    assert eligibility_on(state, D(2026, 3, 1)).status == "active"


def three_then_nine():
    return [decision(1, "2025-02-01", 3), decision(2, "2025-03-10", 9)]


def test_rule_22_three_repaired_points_shorten_the_re_registration_bar_by_one_month(state_of):
    state = state_of(
        three_then_nine(), repairs=approvals(["offline_training", "online_study"], D(2025, 4, 1))
    )
    assert [(t.barred_until, t.shortened_by_months) for t in state.terminations] == [(D(2026, 2, 10), 1)]
    assert [(r.months_shortened, r.shortened) for r in state.repairs] == [(0, None), (1, "bar")]
    state = state_of(
        three_then_nine(),
        repairs=approvals(
            ["offline_training", "online_study", "offline_training", "online_study"], D(2025, 4, 1)
        ),
    )
    assert state.barred_until == D(2026, 1, 10)


def test_rule_22_a_bar_is_never_shortened_to_before_the_approval_date(state_of):
    state = state_of(
        [decision(1, "2025-01-01", 6), decision(2, "2025-01-02", 6)],
        repairs=[repair(3, "2025-12-19", "offline_training"), repair(4, "2025-12-20", "online_study")],
        registrations=[registration(1, "2024-01-01"), registration(2, "2025-12-20")],
    )
    assert [(t.start, t.barred_until) for t in state.terminations] == [(D(2025, 1, 2), D(2025, 12, 20))]
    assert eligibility_on(state, D(2025, 12, 19)).status == "terminated"
    assert eligibility_on(state, D(2025, 12, 20)).status == "active"


def test_rule_22_with_nothing_in_effect_points_are_removed_and_no_term_changes(state_of):
    state = state_of(
        [decision(1, "2025-01-01", 6), decision(2, "2025-01-01", 3)],
        repairs=approvals(["offline_training", "online_study"], D(2025, 6, 1)),
    )
    assert suspension_ranges(state) == [(D(2025, 1, 1), D(2025, 3, 1), 2)]
    assert state.suspensions[0].shortened_by_months == 0
    assert [(r.points, r.months_shortened, r.shortened) for r in state.repairs] == [
        (2, 0, None),
        (1, 0, None),
    ]
    assert state.year(2025).points_total == 6


def test_rule_22_fewer_than_three_repaired_points_shorten_nothing(state_of):
    state = state_of(nine_on_march_1(), repairs=[repair(3, "2025-03-10", "offline_training")])
    assert suspension_ranges(state) == [(D(2025, 3, 1), D(2025, 5, 1), 2)]


def test_rule_15_after_repair_removed_a_queued_segment_a_new_suspension_starts_on_its_decision_date(state_of):
    # 6 + 3 -> [01-02, 03-02) 2 months; +1 -> queued [03-02, 04-02); 6 points repaired by 01-12 trim 2 months:
    # the chain is [01-02, 02-02) and the queued segment is gone. Total is then 10 - 6 = 4;
    # +7 on 02-10 makes 11 (5 months due, 3 imposed): 2 months, and nothing runs on 02-10.
    state = state_of(
        [
            decision(1, "2025-01-01", 6),
            decision(2, "2025-01-02", 3),
            decision(3, "2025-01-03", 1),
            decision(10, "2025-02-10", 7),
        ],
        repairs=approvals(["offline_training"] * 3, D(2025, 1, 10), first_entry=4),
        registrations=[registration(1, "2024-01-01")],
    )
    assert suspension_ranges(state) == [
        (D(2025, 1, 2), D(2025, 2, 2), 2),
        (D(2025, 2, 10), D(2025, 4, 10), 2),
    ]
    assert eligibility_on(state, D(2025, 2, 15)).status == "suspended"
