"""Rules 4, 6, 9, 17, 18 and 24: eligibility on a day, reversals, the snapshot, and the legal calendar."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from rules_builders import decision, registration, repair, reversal, suspension_ranges

from points_service.rules.calendar import local_date, score_year
from points_service.rules.snapshot import state_from_mapping, state_to_mapping
from points_service.rules.standing import (
    PersonState,
    eligibility_on,
)

D = dt.date
SHANGHAI = ZoneInfo("Asia/Shanghai")


# -- rule 4 and 18: registered, active --------------------------------------------------------------


def test_rule_18_a_registered_person_without_sanctions_is_active_and_eligible(state_of):
    state = state_of(registrations=[registration(1, "2025-01-01")])
    answer = eligibility_on(state, D(2025, 6, 1))
    assert (answer.eligible, answer.status, answer.until, answer.barred_until) == (True, "active", None, None)
    assert answer.at == D(2025, 6, 1)


def test_rule_4_a_registration_end_is_exclusive(state_of):
    state = state_of(registrations=[registration(1, "2025-01-01", "2025-12-01")])
    last_day = eligibility_on(state, D(2025, 11, 30))
    assert (last_day.eligible, last_day.status, last_day.until) == (True, "active", D(2025, 12, 1))
    on_end = eligibility_on(state, D(2025, 12, 1))
    assert (on_end.eligible, on_end.status) == (False, "not_registered")


def test_rule_4_before_the_registration_starts_the_person_is_not_registered(state_of):
    state = state_of(registrations=[registration(1, "2025-01-01")])
    assert eligibility_on(state, D(2024, 12, 31)).status == "not_registered"
    assert eligibility_on(state, D(2025, 1, 1)).status == "active"


def test_rule_18_a_person_with_no_registration_is_not_registered(state_of):
    answer = eligibility_on(state_of(), D(2025, 6, 1))
    assert (answer.eligible, answer.status, answer.until) == (False, "not_registered", None)
    assert "docs/rules.md rule 4" in answer.reason


def test_rule_18_registered_elsewhere_is_not_registered_at_the_institution_asked_about(state_of):
    state = state_of(registrations=[registration(1, "2025-01-01", institution="H0001")])
    elsewhere = eligibility_on(state, D(2025, 6, 1), institution_code="H0002")
    assert (elsewhere.eligible, elsewhere.status) == (False, "not_registered")
    assert "at H0002" in elsewhere.reason
    here = eligibility_on(state, D(2025, 6, 1), institution_code="H0001")
    assert (here.eligible, here.status) == (True, "active")


def test_rule_4_with_several_registrations_active_until_the_latest_end(state_of):
    state = state_of(
        registrations=[
            registration(1, "2025-01-01", "2025-09-01", institution="H0001"),
            registration(2, "2025-03-01", "2025-11-01", institution="H0002"),
        ]
    )
    assert eligibility_on(state, D(2025, 6, 1)).until == D(2025, 11, 1)
    assert eligibility_on(state, D(2025, 6, 1), institution_code="H0001").until == D(2025, 9, 1)


def test_rule_18_before_a_registration_starts_until_names_its_start(state_of):
    state = state_of(registrations=[registration(1, "2026-05-15")])
    answer = eligibility_on(state, D(2026, 5, 14))
    assert (answer.status, answer.until) == ("not_registered", D(2026, 5, 15))


def test_rule_18_until_names_the_next_registration_at_the_institution_asked_about(state_of):
    state = state_of(
        registrations=[
            registration(1, "2026-03-01", institution="H0001"),
            registration(2, "2026-06-01", institution="H0002"),
        ]
    )
    assert eligibility_on(state, D(2026, 2, 1), institution_code="H0002").until == D(2026, 6, 1)
    assert eligibility_on(state, D(2026, 2, 1)).until == D(2026, 3, 1)
    assert eligibility_on(state, D(2026, 7, 1), institution_code="H0003").until is None


def test_rule_18_an_active_person_is_active_until_a_known_suspension_starts(state_of):
    # 9 points queue a 2-month term behind the one running; asked about a day before the decision,
    # the person is active until it starts
    state = state_of([decision(1, "2026-04-10", 9)], registrations=[registration(1, "2025-01-01")])
    answer = eligibility_on(state, D(2026, 4, 9))
    assert (answer.status, answer.until) == ("active", D(2026, 4, 10))


def test_rule_18_an_active_person_is_active_until_a_known_termination(state_of):
    state = state_of([decision(1, "2026-04-10", 12)], registrations=[registration(1, "2025-01-01")])
    assert (eligibility_on(state, D(2026, 1, 2)).status, eligibility_on(state, D(2026, 1, 2)).until) == (
        "active",
        D(2026, 4, 10),
    )


def test_rule_17_a_terminated_person_is_terminated_until_a_registration_recorded_after_the_bar(state_of):
    state = state_of(
        [decision(1, "2025-02-01", 12)],
        registrations=[registration(1, "2024-01-01"), registration(2, "2028-03-01")],
    )
    answer = eligibility_on(state, D(2026, 6, 1))
    assert (answer.status, answer.until) == ("terminated", D(2028, 3, 1))
    assert eligibility_on(state, D(2028, 3, 1)).status == "active"


# -- rule 18: suspended and terminated --------------------------------------------------------------


def test_rule_18_suspended_until_the_end_of_the_chain_including_queued_terms(state_of):
    state = state_of(
        [decision(1, "2025-11-01", 9), decision(2, "2026-01-05", 6), decision(3, "2026-01-06", 3)],
        registrations=[registration(1, "2024-01-01")],
    )
    assert suspension_ranges(state) == [(D(2025, 11, 1), D(2026, 3, 1), 4), (D(2026, 3, 1), D(2026, 5, 1), 2)]
    answer = eligibility_on(state, D(2025, 12, 1))
    assert (answer.eligible, answer.status, answer.until) == (False, "suspended", D(2026, 5, 1))
    assert "2025-11-01" in answer.reason and "2026-05-01" in answer.reason
    in_queued = eligibility_on(state, D(2026, 4, 30))
    assert (in_queued.status, in_queued.until) == ("suspended", D(2026, 5, 1))
    assert eligibility_on(state, D(2026, 5, 1)).status == "active"


def test_rule_5_a_suspension_applies_at_every_institution_and_even_without_registration(state_of):
    state = state_of(
        [decision(1, "2025-02-01", 9)], registrations=[registration(1, "2024-01-01", institution="H0001")]
    )
    assert eligibility_on(state, D(2025, 3, 1), institution_code="H0002").status == "suspended"
    assert eligibility_on(state_of([decision(1, "2025-02-01", 9)]), D(2025, 3, 1)).status == "suspended"


def test_rule_18_terminated_answer_names_the_bar(state_of):
    state = state_of(
        [decision(1, "2025-02-01", 3), decision(2, "2025-05-20", 9)],
        registrations=[registration(1, "2024-01-01")],
    )
    answer = eligibility_on(state, D(2025, 7, 1), institution_code="H0001")
    assert (answer.eligible, answer.status, answer.until, answer.barred_until) == (
        False,
        "terminated",
        None,
        D(2026, 5, 20),
    )
    assert "2025-05-20" in answer.reason and "2026-05-20" in answer.reason


def emergency_cases(state_of):
    return {
        "active": (state_of(registrations=[registration(1, "2024-01-01")]), D(2025, 6, 1)),
        "not_registered": (state_of(), D(2025, 6, 1)),
        "suspended": (
            state_of([decision(1, "2025-02-01", 9)], registrations=[registration(1, "2024-01-01")]),
            D(2025, 3, 1),
        ),
        "terminated": (
            state_of([decision(1, "2025-02-01", 12)], registrations=[registration(1, "2024-01-01")]),
            D(2025, 3, 1),
        ),
    }


@pytest.mark.parametrize("status", ["active", "not_registered", "suspended", "terminated"])
def test_rule_18_emergency_care_always_settles(state_of, status):
    state, on = emergency_cases(state_of)[status]
    answer = eligibility_on(state, on)
    assert answer.status == status
    assert answer.emergency_care_settles is True


# -- rule 24: reversals recompute everything --------------------------------------------------------


def test_rule_24_reversing_a_decision_lifts_the_suspension_it_caused(state_of):
    ledger = [decision(1, "2025-01-10", 6), decision(2, "2025-02-01", 3)]
    regs = [registration(1, "2024-01-01")]
    assert eligibility_on(state_of(ledger, registrations=regs), D(2025, 3, 1)).status == "suspended"
    state = state_of(ledger, reversals=[reversal(3, 2, "2025-02-20")], registrations=regs)
    assert state.suspensions == ()
    assert state.year(2025).points_total == 6
    assert state.year(2025).tier == "agency_talk"
    assert state.decisions == (1,)
    assert eligibility_on(state, D(2025, 3, 1)).status == "active"


def test_rule_24_reversing_a_termination_re_opens_the_registrations_it_ended(state_of):
    ledger = [decision(1, "2025-02-01", 3), decision(2, "2025-05-20", 9)]
    regs = [registration(1, "2024-01-01"), registration(2, "2024-01-01", "2025-12-31", institution="H0002")]
    terminated = state_of(ledger, registrations=regs)
    assert [(s.end, s.ended_by) for s in terminated.registrations] == [
        (D(2025, 5, 20), "termination"),
        (D(2025, 5, 20), "termination"),
    ]
    state = state_of(ledger, reversals=[reversal(3, 2, "2025-06-01")], registrations=regs)
    assert state.terminations == ()
    assert [(s.end, s.ended_by, s.termination_violation_id) for s in state.registrations] == [
        (None, None, None),
        (D(2025, 12, 31), "registry", None),
    ]
    assert eligibility_on(state, D(2025, 7, 1)).status == "active"
    assert state.barred_until is None


def test_rule_24_reversing_the_first_decision_moves_the_measure_to_the_next(state_of):
    state = state_of(
        [decision(1, "2025-01-10", 2), decision(2, "2025-02-01", 1), decision(3, "2025-03-01", 2)],
        reversals=[reversal(4, 1, "2025-03-05")],
    )
    assert [(m.kind, m.violation_id, m.triggered_on) for m in state.measures] == [
        ("institution_talk", 3, D(2025, 3, 1))
    ]


# -- the snapshot ------------------------------------------------------------------------------------


def test_state_mapping_round_trips_through_json_to_an_equal_state_in_the_stored_form(state_of):
    state = state_of(
        [
            decision(1, "2025-02-01", 3),
            decision(2, "2025-05-20", 9),
            decision(3, "2026-01-05", 6),
            decision(4, "2026-01-06", 3),
            decision(5, "2026-02-01", 1),
        ],
        repairs=[repair(6, "2025-06-01", "offline_training"), repair(7, "2026-01-10", "online_study")],
        registrations=[registration(1, "2024-01-01"), registration(2, "2026-06-01", institution="H0002")],
    )
    assert (
        state.measures and state.suspensions and state.terminations and state.repairs and state.registrations
    )
    mapping = state_to_mapping(state)
    assert state_from_mapping(mapping) == state
    assert state_from_mapping(json.loads(json.dumps(mapping))) == state
    # the form snapshots already stored hold: parts as arrays of their fields in order, years as objects
    assert mapping == {
        "years": [
            {
                "year": 2025,
                "points_recorded": 12,
                "points_repaired": 2,
                "max_single_event": 9,
                "tier": "termination",
            },
            {
                "year": 2026,
                "points_recorded": 10,
                "points_repaired": 1,
                "max_single_event": 6,
                "tier": "suspension",
            },
        ],
        "measures": [["institution_talk", 2025, "2025-02-01", 1], ["agency_talk", 2026, "2026-01-05", 3]],
        "suspensions": [["2026-01-06", "2026-03-06", 2, 2026, 4, "cumulative", 0]],
        "terminations": [["2025-05-20", "2026-05-20", 1, 2025, 2, "cumulative", 0]],
        "repairs": [
            [6, 2025, "2025-06-01", "offline_training", 2, 0, None],
            [7, 2026, "2026-01-10", "online_study", 1, 0, None],
        ],
        "registrations": [
            [1, "H0001", "2024-01-01", "2025-05-20", "termination", 2],
            [2, "H0002", "2026-06-01", None, None, None],
        ],
        "decisions": [1, 2, 3, 4, 5],
    }


def test_an_empty_state_round_trips(state_of):
    assert state_from_mapping(state_to_mapping(state_of())) == PersonState()


# -- rules 6 and 9: the legal calendar (Asia/Shanghai) -----------------------------------------------


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (dt.datetime(2025, 12, 31, 23, 59, 59, tzinfo=SHANGHAI), D(2025, 12, 31)),
        (dt.datetime(2026, 1, 1, 0, 0, 0, tzinfo=SHANGHAI), D(2026, 1, 1)),
        (dt.datetime(2025, 12, 31, 16, 0, 0, tzinfo=dt.UTC), D(2026, 1, 1)),
        (dt.datetime(2025, 12, 31, 15, 59, 59, tzinfo=dt.UTC), D(2025, 12, 31)),
        (dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=SHANGHAI), D(2026, 12, 31)),
        (dt.datetime(2027, 1, 1, 0, 0, 0, tzinfo=SHANGHAI), D(2027, 1, 1)),
        (dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=dt.timezone(dt.timedelta(hours=8))), D(2026, 12, 31)),
    ],
)
def test_rules_6_and_9_the_legal_date_and_score_year_are_those_of_asia_shanghai(instant, expected):
    assert local_date(instant) == expected
    assert score_year(local_date(instant)) == expected.year


def test_rule_6_a_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        local_date(dt.datetime(2025, 12, 31, 23, 59, 59))


def test_rule_9_points_decided_on_either_side_of_new_year_count_in_different_years(state_of):
    before = local_date(dt.datetime(2025, 12, 31, 15, 59, 59, tzinfo=dt.UTC))
    after = local_date(dt.datetime(2025, 12, 31, 16, 0, 0, tzinfo=dt.UTC))
    state = state_of([decision(1, before, 6), decision(2, after, 6)])
    assert (state.year(2025).points_total, state.year(2026).points_total) == (6, 6)
    assert state.terminations == ()
