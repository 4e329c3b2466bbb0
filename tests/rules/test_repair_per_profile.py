"""Rules 19–22 and 26, per shipped profile: what an approved repair credits, why one is refused, and
how repaired points shorten the suspension or bar in effect.

hebei-2025: online_study 1, offline_training 2, policy_promotion 1, inspection_participation 1; 6 a year.
qinghai-2025: every activity 1; policy_promotion + inspection_participation at most 2 a year; 6 a year.
Both: 3 repaired points = 1 month; a year holding a single-event 12 cannot be repaired.
"""

from __future__ import annotations

import datetime as dt

import pytest
from rules_builders import HEBEI, QINGHAI, decision, measure_kinds, registration, repair, suspension_ranges

from points_service.rules.repair import repair_credit_on, repair_refusal
from points_service.rules.standing import eligibility_on

D = dt.date
PROFILES = [HEBEI, QINGHAI]
ONE_DAY = dt.timedelta(days=1)


def approvals(activities, start: dt.date, profile: str, first_entry: int = 100):
    """One approved application a day from `start`, entry ids from `first_entry`."""
    return [
        repair(first_entry + i, start + i * ONE_DAY, activity, profile)
        for i, activity in enumerate(activities)
    ]


def credited(state) -> list[tuple[int, int, str | None]]:
    """(points, months_shortened, shortened) of every repair, in approval order."""
    return [(r.points, r.months_shortened, r.shortened) for r in state.repairs]


# -- rules 20 and 26: the credit of each activity --------------------------------------------------


@pytest.mark.parametrize(
    ("profile_id", "activity", "credit"),
    [
        (HEBEI, "online_study", 1),
        (HEBEI, "offline_training", 2),
        (HEBEI, "policy_promotion", 1),
        (HEBEI, "inspection_participation", 1),
        (QINGHAI, "online_study", 1),
        (QINGHAI, "offline_training", 1),
        (QINGHAI, "policy_promotion", 1),
        (QINGHAI, "inspection_participation", 1),
    ],
)
def test_rules_20_and_26_an_application_approved_with_eight_points_recorded_credits_the_activity_value(
    state_of, policies, profile_id, activity, credit
):
    state = state_of([decision(1, "2025-01-10", 8, profile_id)])
    policy = policies.get(profile_id)
    assert repair_credit_on(state, activity=activity, day=D(2025, 2, 1), policy=policy) == (credit, None)
    assert repair_refusal(state, activity=activity, day=D(2025, 2, 1), policy=policy) is None


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rule_20_an_activity_the_profile_does_not_know_credits_nothing_and_is_refused_under_rule_20(
    state_of, policies, profile_id
):
    state = state_of([decision(1, "2025-01-10", 8, profile_id)])
    policy = policies.get(profile_id)
    assert repair_credit_on(state, activity="blood_donation", day=D(2025, 2, 1), policy=policy) == (
        0,
        "docs/rules.md rule 20: unknown repair activity",
    )
    assert repair_refusal(state, activity="blood_donation", day=D(2025, 2, 1), policy=policy) == (
        "docs/rules.md rule 20: unknown repair activity"
    )


# -- repair_refusal: applications that cannot succeed ----------------------------------------------


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rule_21_with_nothing_recorded_this_year_an_application_is_refused_as_no_points_recorded(
    state_of, policies, profile_id
):
    refusal = repair_refusal(
        state_of([]), activity="online_study", day=D(2025, 6, 1), policy=policies.get(profile_id)
    )
    assert refusal == "docs/rules.md rule 21: there are no points recorded in 2025 to repair"


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rules_9_and_21_points_of_2025_do_not_make_2026_repairable_after_the_reset_on_1_january(
    state_of, policies, profile_id
):
    state = state_of([decision(1, "2025-11-01", 5, profile_id)])
    policy = policies.get(profile_id)
    assert repair_refusal(state, activity="online_study", day=D(2025, 12, 31), policy=policy) is None
    assert (
        repair_refusal(state, activity="online_study", day=D(2026, 1, 1), policy=policy)
        == "docs/rules.md rule 21: there are no points recorded in 2026 to repair"
    )
    assert repair_credit_on(state, activity="online_study", day=D(2026, 1, 1), policy=policy)[0] == 0


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rule_21_once_every_recorded_point_is_repaired_a_further_application_is_refused_under_rule_21(
    state_of, policies, profile_id
):
    state = state_of(
        [decision(1, "2025-01-10", 1, profile_id)],
        repairs=[repair(2, "2025-02-01", "online_study", profile_id)],
    )
    assert state.year(2025).points_total == 0
    refusal = repair_refusal(
        state, activity="online_study", day=D(2025, 3, 1), policy=policies.get(profile_id)
    )
    assert refusal is not None and refusal.startswith("docs/rules.md rule 21:")


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rule_20_after_six_points_repaired_in_the_year_an_application_is_refused_under_rule_20(
    state_of, policies, profile_id
):
    state = state_of(
        [decision(1, "2025-01-10", 8, profile_id)],
        repairs=approvals(["online_study"] * 6, D(2025, 2, 1), profile_id),
    )
    assert (state.year(2025).points_repaired, state.year(2025).points_total) == (6, 2)
    policy = policies.get(profile_id)
    assert (
        repair_refusal(state, activity="online_study", day=D(2025, 3, 1), policy=policy)
        == "docs/rules.md rule 20: at most 6 points a year"
    )
    # the cap is per year: on 2026-01-02 with 2026 points recorded, the same activity succeeds again
    next_year = state_of(
        [decision(1, "2025-01-10", 8, profile_id), decision(2, "2026-01-02", 3, profile_id)],
        repairs=approvals(["online_study"] * 6, D(2025, 2, 1), profile_id),
    )
    assert repair_refusal(next_year, activity="online_study", day=D(2026, 1, 2), policy=policy) is None


def test_rule_26_qinghai_refuses_a_third_promotion_or_inspection_point_but_still_accepts_online_study(
    state_of, qinghai
):
    state = state_of(
        [decision(1, "2025-01-10", 8, QINGHAI)],
        repairs=approvals(["policy_promotion", "inspection_participation"], D(2025, 2, 1), QINGHAI),
    )
    for activity in ("policy_promotion", "inspection_participation"):
        assert (
            repair_refusal(state, activity=activity, day=D(2025, 3, 1), policy=qinghai)
            == "docs/rules.md rule 26: at most 2 points a year from these activities"
        )
    assert repair_refusal(state, activity="online_study", day=D(2025, 3, 1), policy=qinghai) is None
    assert repair_credit_on(state, activity="offline_training", day=D(2025, 3, 1), policy=qinghai) == (
        1,
        None,
    )


def test_rule_20_hebei_has_no_per_kind_cap_so_a_third_promotion_point_is_accepted(state_of, hebei):
    state = state_of(
        [decision(1, "2025-01-10", 8)],
        repairs=approvals(["policy_promotion", "inspection_participation"], D(2025, 2, 1), HEBEI),
    )
    assert repair_credit_on(state, activity="policy_promotion", day=D(2025, 3, 1), policy=hebei) == (1, None)


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rules_21_and_26_a_year_holding_a_single_event_12_is_refused_for_every_activity(
    state_of, policies, profile_id
):
    state = state_of([decision(1, "2025-05-20", 12, profile_id)])
    policy = policies.get(profile_id)
    for activity in ("online_study", "offline_training", "policy_promotion", "inspection_participation"):
        assert (
            repair_refusal(state, activity=activity, day=D(2025, 6, 1), policy=policy)
            == "docs/rules.md rule 21: a year that holds a single-event 12 cannot be repaired"
        )


def test_rule_21_hebei_offline_training_with_one_point_recorded_credits_one_point_not_two(state_of, hebei):
    state = state_of([decision(1, "2025-01-10", 1)])
    assert repair_credit_on(state, activity="offline_training", day=D(2025, 2, 1), policy=hebei) == (
        1,
        "docs/rules.md rule 21: only points already recorded this year, never below zero",
    )
    assert repair_refusal(state, activity="offline_training", day=D(2025, 2, 1), policy=hebei) is None
    derived = state_of([decision(1, "2025-01-10", 1)], repairs=[repair(2, "2025-02-01", "offline_training")])
    assert (derived.repairs[0].points, derived.year(2025).points_total) == (1, 0)


def test_rule_20_hebei_offline_training_with_five_points_repaired_credits_the_sixth_point_only(
    state_of, hebei
):
    state = state_of(
        [decision(1, "2025-01-10", 8)],
        repairs=approvals(["online_study"] * 5, D(2025, 2, 1), HEBEI),
    )
    assert repair_credit_on(state, activity="offline_training", day=D(2025, 3, 1), policy=hebei) == (
        1,
        "docs/rules.md rule 20: at most 6 points a year",
    )


# -- rule 22: every 3 repaired points shorten the term in effect by 1 month -------------------------


def eleven_on_march_1(profile: str):
    """A single-event 11: hebei 10 months [2025-03-01, 2026-01-01); qinghai 5 months [03-01, 08-01)."""
    return [decision(1, "2025-03-01", 11, profile)]


def test_rule_22_qinghai_needs_three_single_point_approvals_for_one_month(state_of):
    state = state_of(
        eleven_on_march_1(QINGHAI),
        repairs=approvals(["online_study"] * 3, D(2025, 3, 10), QINGHAI),
    )
    assert credited(state) == [(1, 0, None), (1, 0, None), (1, 1, "suspension")]
    assert suspension_ranges(state) == [(D(2025, 3, 1), D(2025, 7, 1), 5)]
    assert state.suspensions[0].shortened_by_months == 1


def test_rule_22_qinghai_two_approvals_shorten_nothing(state_of):
    state = state_of(
        eleven_on_march_1(QINGHAI),
        repairs=approvals(["offline_training"] * 2, D(2025, 3, 10), QINGHAI),
    )
    assert credited(state) == [(1, 0, None), (1, 0, None)]
    assert suspension_ranges(state) == [(D(2025, 3, 1), D(2025, 8, 1), 5)]


def test_rule_22_hebei_offline_training_twice_is_four_points_and_shortens_by_one_month_not_two(state_of):
    state = state_of(
        eleven_on_march_1(HEBEI), repairs=approvals(["offline_training"] * 2, D(2025, 3, 10), HEBEI)
    )
    assert credited(state) == [(2, 0, None), (2, 1, "suspension")]
    assert state.year(2025).points_repaired == 4
    assert suspension_ranges(state) == [(D(2025, 3, 1), D(2025, 12, 1), 10)]


@pytest.mark.parametrize(
    ("profile_id", "activities", "end"),
    [
        (HEBEI, ["offline_training"] * 3, D(2025, 11, 1)),  # 2 + 2 + 2: 10 months -> 8
        (QINGHAI, ["online_study", "offline_training"] * 3, D(2025, 6, 1)),  # 6 x 1: 5 months -> 3
    ],
)
def test_rule_22_six_repaired_points_shorten_the_running_suspension_by_two_months(
    state_of, profile_id, activities, end
):
    state = state_of(eleven_on_march_1(profile_id), repairs=approvals(activities, D(2025, 3, 10), profile_id))
    assert state.year(2025).points_repaired == 6
    assert sum(r.months_shortened for r in state.repairs) == 2
    assert [(s.end, s.shortened_by_months) for s in state.suspensions] == [(end, 2)]


def test_rule_22_qinghai_a_suspension_with_nine_days_left_ends_on_the_approval_date_not_a_month_earlier(
    state_of,
):
    # qinghai 9 points: 3 months [03-01, 06-01); the third point is approved on 05-23, a month back is 05-01
    state = state_of(
        [decision(1, "2025-03-01", 9, QINGHAI)],
        repairs=approvals(["online_study"] * 3, D(2025, 5, 21), QINGHAI),
        registrations=[registration(1, "2024-01-01")],
    )
    assert suspension_ranges(state) == [(D(2025, 3, 1), D(2025, 5, 23), 3)]
    assert credited(state)[-1] == (1, 1, "suspension")
    assert eligibility_on(state, D(2025, 5, 22)).status == "suspended"
    assert eligibility_on(state, D(2025, 5, 23)).status == "active"


def test_rule_22_hebei_a_suspension_with_nine_days_left_ends_on_the_approval_date_not_a_month_earlier(
    state_of,
):
    # hebei 9 points: 2 months [03-01, 05-01); 3 points are reached on 04-22 (offline 04-21, online 04-22)
    state = state_of(
        [decision(1, "2025-03-01", 6), decision(2, "2025-03-01", 3)],
        repairs=approvals(["offline_training", "online_study"], D(2025, 4, 21), HEBEI),
        registrations=[registration(1, "2024-01-01")],
    )
    assert suspension_ranges(state) == [(D(2025, 3, 1), D(2025, 4, 22), 2)]
    assert eligibility_on(state, D(2025, 4, 22)).status == "active"


@pytest.mark.parametrize(
    ("profile_id", "activities"),
    [(HEBEI, ["offline_training", "online_study"]), (QINGHAI, ["online_study"] * 3)],
)
def test_rule_22_three_repaired_points_move_a_cumulative_one_year_bar_back_by_one_month(
    state_of, profile_id, activities
):
    # 6 + 6: cumulative 12 on 2025-02-10 -> terminated, barred until 2026-02-10; 3 points repaired from 03-01
    state = state_of(
        [decision(1, "2025-01-10", 6, profile_id), decision(2, "2025-02-10", 6, profile_id)],
        repairs=approvals(activities, D(2025, 3, 1), profile_id),
        registrations=[registration(1, "2024-01-01"), registration(2, "2026-01-10")],
    )
    assert [(t.bar_years, t.barred_until, t.shortened_by_months) for t in state.terminations] == [
        (1, D(2026, 1, 10), 1)
    ]
    assert state.barred_until == D(2026, 1, 10)
    assert credited(state)[-1] == (1, 1, "bar")
    assert eligibility_on(state, D(2026, 1, 10)).status == "active"


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rules_21_and_22_a_three_year_single_event_bar_is_not_shortened_by_applications_in_its_year(
    state_of, profile_id
):
    state = state_of(
        [decision(1, "2025-05-20", 12, profile_id)],
        repairs=approvals(["online_study", "offline_training", "online_study"], D(2025, 6, 1), profile_id),
    )
    assert credited(state) == [(0, 0, None)] * 3
    assert [(t.bar_years, t.barred_until, t.shortened_by_months) for t in state.terminations] == [
        (3, D(2028, 5, 20), 0)
    ]


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rules_21_22_and_26_a_three_year_single_event_bar_is_not_shortened_by_repairs_of_a_later_year(
    state_of, profile_id
):
    state = state_of(
        [decision(1, "2025-05-20", 12, profile_id), decision(2, "2026-02-01", 3, profile_id)],
        repairs=approvals(["online_study"] * 3, D(2026, 3, 1), profile_id),
    )
    assert state.year(2026).points_repaired == 3  # the 2026 points themselves may be repaired
    assert state.barred_until == D(2028, 5, 20)


@pytest.mark.parametrize(
    ("profile_id", "activities"),
    [(HEBEI, ["offline_training", "online_study"]), (QINGHAI, ["online_study"] * 3)],
)
def test_rule_22_with_nothing_in_effect_three_repaired_points_are_removed_and_shorten_nothing(
    state_of, profile_id, activities
):
    # 5 points on 2025-01-10: no suspension, no bar; 3 points repaired from 2025-02-01
    state = state_of(
        [decision(1, "2025-01-10", 5, profile_id)], repairs=approvals(activities, D(2025, 2, 1), profile_id)
    )
    assert (state.year(2025).points_repaired, state.year(2025).points_total) == (3, 2)
    assert all(r.shortened is None and r.months_shortened == 0 for r in state.repairs)
    assert state.suspensions == () and state.terminations == ()


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rule_22_a_suspension_that_ended_before_the_approval_is_left_as_it_was(state_of, profile_id):
    # 9 points on 2025-01-02 (hebei 2 months, qinghai 3 months); 3 points repaired from 2025-06-02
    state = state_of(
        [decision(1, "2025-01-02", 9, profile_id)],
        repairs=approvals(["online_study"] * 3, D(2025, 6, 2), profile_id),
    )
    months = {HEBEI: 4, QINGHAI: 3}[profile_id]  # single-event 9: hebei 4 months, qinghai 3
    assert [(s.months, s.shortened_by_months) for s in state.suspensions] == [(months, 0)]
    assert credited(state) == [(1, 0, None)] * 3
    assert state.year(2025).points_total == 6


# -- rule 21: measures stay, later violations start from the lower total ----------------------------


def test_rule_21_hebei_a_public_notice_stays_and_four_later_points_give_two_months_suspension_not_termination(
    state_of,
):
    # 8 -> public_notice; 3 repaired -> 5; +4 on 05-01 -> 9: cumulative 2 months (8 + 4 = 12 would terminate)
    state = state_of(
        [decision(1, "2025-01-10", 8), decision(2, "2025-05-01", 4)],
        repairs=approvals(["offline_training", "online_study"], D(2025, 2, 1), HEBEI),
    )
    assert measure_kinds(state, 2025) == ["public_notice"]
    assert state.year(2025).points_total == 9
    assert suspension_ranges(state) == [(D(2025, 5, 1), D(2025, 7, 1), 2)]
    assert state.terminations == ()
    assert state.year(2025).tier == "suspension"


def test_rule_21_qinghai_an_institution_talk_stays_and_a_later_four_points_give_a_three_month_suspension(
    state_of,
):
    # 8 -> institution_talk; 3 repaired -> 5; +4 on 05-01 -> 9: cumulative 3 months (12 would terminate)
    state = state_of(
        [decision(1, "2025-01-10", 8, QINGHAI), decision(2, "2025-05-01", 4, QINGHAI)],
        repairs=approvals(["online_study"] * 3, D(2025, 2, 1), QINGHAI),
    )
    assert measure_kinds(state, 2025) == ["institution_talk"]
    assert state.year(2025).points_total == 9
    assert suspension_ranges(state) == [(D(2025, 5, 1), D(2025, 8, 1), 3)]
    assert state.terminations == ()


def test_rules_13_and_21_hebei_climbing_back_to_a_tier_already_reached_triggers_no_second_measure(state_of):
    # 4 -> agency_talk; offline 2 -> 2; +1 -> 3 (institution_talk, lower); +2 -> 5 (agency_talk again)
    state = state_of(
        [decision(1, "2025-01-10", 4), decision(2, "2025-03-01", 1), decision(3, "2025-04-01", 2)],
        repairs=[repair(4, "2025-02-01", "offline_training")],
    )
    assert [(m.kind, m.violation_id) for m in state.measures] == [("agency_talk", 1)]
    assert state.year(2025).points_total == 5
    assert state.year(2025).tier == "agency_talk"


def test_rules_21_and_25_qinghai_a_repair_does_not_lower_the_tier_of_the_year(state_of):
    # 6 -> institution_talk; 3 repaired -> 3, below the qinghai threshold of 6; the tier stays
    state = state_of(
        [decision(1, "2025-01-10", 6, QINGHAI)],
        repairs=approvals(["online_study"] * 3, D(2025, 2, 1), QINGHAI),
    )
    assert state.year(2025).points_total == 3
    assert state.year(2025).tier == "institution_talk"
    assert measure_kinds(state) == ["institution_talk"]
