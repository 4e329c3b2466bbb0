"""Properties of derive_state over generated ledgers (docs/rules.md rules 9, 12–17, 20–22, 24)."""

from __future__ import annotations

import datetime as dt
import json
import os

from hypothesis import given, settings
from hypothesis import strategies as st
from rules_builders import HEBEI, QINGHAI, derive, registration, reversal
from rules_builders import decision as make_decision
from rules_builders import repair as make_repair

from points_service.rules.policy import REPAIR_ACTIVITIES, tier_rank
from points_service.rules.snapshot import eligibility_state_from_json, state_from_mapping, state_to_mapping
from points_service.rules.standing import (
    eligibility_on,
)

D = dt.date
FIRST, LAST = D(2025, 1, 1), D(2027, 12, 31)

# at most 200 examples by default (the suite must stay fast); raise it locally to hunt harder
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("RULES_PROPERTY_EXAMPLES", "75")),
    deadline=None,
    database=None,  # write nothing outside tests/rules
)

# clustered dates (terms overlap and queue) as well as spread ones
days = st.one_of(st.dates(D(2025, 11, 1), D(2026, 3, 31)), st.dates(FIRST, LAST))
# small points often (measures, top-ups), any band sometimes (single events, terminations)
points = st.one_of(st.integers(1, 4), st.integers(1, 12))
profile_ids = st.sampled_from([HEBEI, QINGHAI])
decision_rows = st.lists(st.tuples(days, points, profile_ids), max_size=8)
non_empty_decision_rows = st.lists(st.tuples(days, points, profile_ids), min_size=1, max_size=8)
repair_rows = st.lists(st.tuples(days, st.sampled_from(REPAIR_ACTIVITIES), profile_ids), max_size=8)
registration_rows = st.lists(
    st.tuples(
        st.dates(D(2024, 6, 1), D(2029, 12, 31)),
        st.none() | st.integers(1, 900),
        st.sampled_from(["H1", "H2"]),
    ),
    max_size=3,
)


def decisions_from(rows, first_entry=1):
    return [make_decision(first_entry + i, on, p, profile) for i, (on, p, profile) in enumerate(rows)]


def repairs_from(rows, first_entry=1000):
    return [
        make_repair(first_entry + i, on, activity, profile) for i, (on, activity, profile) in enumerate(rows)
    ]


def registrations_from(rows):
    return [
        registration(i + 1, start, None if length is None else start + dt.timedelta(days=length), institution)
        for i, (start, length, institution) in enumerate(rows)
    ]


# one open registration since before the scheme: a termination then lasts for ever (rule 18), so the
# severity comparison below is about decisions, not about re-registrations
ALWAYS_REGISTERED = [registration(1, "2024-01-01")]


def sample_days(*states):
    """Every 29th day of 2025–2031 plus every boundary of each state's terms and the day before it."""
    found = {FIRST + dt.timedelta(days=n) for n in range(0, 7 * 366, 29)}
    for state in states:
        for s in state.suspensions:
            found.update({s.start, s.end, s.end - dt.timedelta(days=1)})
        for t in state.terminations:
            found.update({t.start, t.barred_until, t.barred_until - dt.timedelta(days=1)})
    return sorted(found)


@PROPERTY_SETTINGS
@given(decision_rows, repair_rows)
def test_year_totals_are_never_negative_and_repairs_never_exceed_the_yearly_cap(profiles, rows, repair_rows):
    """Rules 20, 21, 26: repairs only remove recorded points, at most 6 a year in both profiles."""
    state = derive(profiles, decisions_from(rows), repairs=repairs_from(repair_rows))
    for standing in state.years:
        assert standing.points_total >= 0
        assert 0 <= standing.points_repaired <= 6
        assert standing.points_repaired == sum(r.points for r in state.repairs if r.year == standing.year)
        assert standing.points_recorded == sum(p for on, p, _ in rows if on.year == standing.year)
    assert all(r.points >= 0 for r in state.repairs)


def term_severity_by_year(state):
    """year -> (termination level: 0 none, 1 cumulative bar, 2 single-event bar; that year's months)."""
    years = {y.year for y in state.years}
    return {
        year: (
            max(
                (2 if t.basis == "single_event" else 1 for t in state.terminations if t.year == year),
                default=0,
            ),
            sum(s.months for s in state.suspensions if s.year == year),
        )
        for year in years
    }


def first_sanctioned_day(state):
    return min([s.start for s in state.suspensions] + [t.start for t in state.terminations], default=None)


@PROPERTY_SETTINGS
@given(decision_rows, st.tuples(days, points, profile_ids))
def test_adding_a_decision_never_makes_the_state_less_severe(profiles, rows, extra):
    """Rules 10–17: more points never lower a year's tier, term or termination, nor lift a termination.

    Decision-only ledgers on purpose: with repairs the property does not hold by design, because a
    new decision can enlarge a later repair's credit (rule 21 caps credit at the points recorded) and
    so shorten a term (rule 22).

    "Suspended on a day" is deliberately not compared day by day: by rules 14 and 15 an extra point
    can start a term earlier and so end the chain earlier (see
    test_rule_15_an_extra_point_that_reaches_the_threshold_earlier_also_ends_the_term_earlier).
    Within a year that is not terminated the months imposed never drop; a terminated year imposes no
    further suspension (rule 12, design), so its months are not compared.
    """
    before = derive(profiles, decisions_from(rows), registrations=ALWAYS_REGISTERED)
    after = derive(profiles, decisions_from([*rows, extra]), registrations=ALWAYS_REGISTERED)
    severity_before, severity_after = term_severity_by_year(before), term_severity_by_year(after)
    for standing in before.years:
        year = standing.year
        assert tier_rank(after.year(year).tier) >= tier_rank(standing.tier)
        level_before, months_before = severity_before[year]
        level_after, months_after = severity_after[year]
        assert level_after >= level_before
        if level_after == 0:
            assert months_after >= months_before
    if first_sanctioned_day(before) is not None:
        assert first_sanctioned_day(after) <= first_sanctioned_day(before)
    for on in sample_days(before, after):
        if eligibility_on(before, on).status == "terminated":
            assert eligibility_on(after, on).status == "terminated", on


@PROPERTY_SETTINGS
@given(non_empty_decision_rows, repair_rows, registration_rows, st.data())
def test_a_reversal_gives_exactly_the_state_without_the_reversed_decision(
    profiles, rows, repair_rows, registration_rows, data
):
    """Rule 24: revocation recomputes everything as if the decision had never been made."""
    decisions = decisions_from(rows)
    gone = data.draw(st.sampled_from(decisions))
    others = [d for d in decisions if d is not gone]
    repairs, regs = repairs_from(repair_rows), registrations_from(registration_rows)
    reversed_ = derive(
        profiles,
        decisions,
        reversals=[reversal(5000, gone.entry_id, LAST)],
        repairs=repairs,
        registrations=regs,
    )
    without = derive(profiles, others, repairs=repairs, registrations=regs)
    assert state_to_mapping(reversed_) == state_to_mapping(without)
    assert gone.violation_id not in reversed_.decisions


@PROPERTY_SETTINGS
@given(decision_rows, repair_rows, registration_rows, st.data())
def test_the_state_does_not_depend_on_the_order_the_entries_are_listed_in(
    profiles, rows, repair_rows, registration_rows, data
):
    decisions, repairs, regs = (
        decisions_from(rows),
        repairs_from(repair_rows),
        registrations_from(registration_rows),
    )
    state = derive(profiles, decisions, repairs=repairs, registrations=regs)
    shuffled = derive(
        profiles,
        data.draw(st.permutations(decisions)),
        repairs=data.draw(st.permutations(repairs)),
        registrations=data.draw(st.permutations(regs)),
    )
    assert shuffled == state


@PROPERTY_SETTINGS
@given(decision_rows, repair_rows, st.sampled_from([2025, 2026]))
def test_entries_of_one_year_never_change_the_next_years_standing(profiles, rows, repair_rows, year):
    """Rule 9: points reset on 1 January; totals, tier and measures of Y+1 ignore year Y."""
    decisions, repairs = decisions_from(rows), repairs_from(repair_rows)
    full = derive(profiles, decisions, repairs=repairs)
    trimmed = derive(
        profiles,
        [d for d in decisions if d.decided_on.year != year],
        repairs=[r for r in repairs if r.approved_on.year != year],
    )
    assert full.year(year + 1) == trimmed.year(year + 1)
    assert [m for m in full.measures if m.year == year + 1] == [
        m for m in trimmed.measures if m.year == year + 1
    ]
    # credits only: a repair in Y+1 may still shorten a bar or suspension from Y (rules 16, 22)
    assert [(r.repair_id, r.points) for r in full.repairs if r.year == year + 1] == [
        (r.repair_id, r.points) for r in trimmed.repairs if r.year == year + 1
    ]


@PROPERTY_SETTINGS
@given(decision_rows, repair_rows, registration_rows)
def test_the_state_mapping_round_trips(profiles, rows, repair_rows, registration_rows):
    state = derive(
        profiles,
        decisions_from(rows),
        repairs=repairs_from(repair_rows),
        registrations=registrations_from(registration_rows),
    )
    assert state_from_mapping(state_to_mapping(state)) == state


@PROPERTY_SETTINGS
@given(decision_rows, repair_rows, registration_rows)
def test_the_hot_reads_lean_snapshot_answers_eligibility_as_the_whole_state_does(
    profiles, rows, repair_rows, registration_rows
):
    state = derive(
        profiles,
        decisions_from(rows),
        repairs=repairs_from(repair_rows),
        registrations=registrations_from(registration_rows),
    )
    # as stored: the mapping's JSON text
    lean = eligibility_state_from_json(json.dumps(state_to_mapping(state)))
    for day in sample_days(state):
        for institution in (None, "H1", "H2"):
            assert eligibility_on(lean, day, institution) == eligibility_on(state, day, institution)
