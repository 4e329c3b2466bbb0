"""What an appeal may be decided as (docs/rules.md rule 23; the points of an amendment, rule 8)."""

from __future__ import annotations

import pytest

from points_service.rules.appeals import outcome_problem


def problem(outcome, points=None, current=4, allowed=(1, 6)):
    return outcome_problem(outcome, points, behaviour="B2-01", current_points=current, allowed=allowed)


@pytest.mark.parametrize("outcome", ["upheld", "revoked"])
def test_upholding_or_revoking_needs_nothing_more(outcome):
    assert problem(outcome) is None


def test_an_amendment_to_other_points_inside_the_range_is_allowed():
    assert problem("amended", 2) is None


def test_an_outcome_outside_the_three_is_refused_by_rule_23():
    found = problem("reduced", 2)
    assert (found.field, found.rule) == ("outcome", "docs/rules.md rule 23")


@pytest.mark.parametrize("outcome", ["upheld", "revoked"])
def test_points_come_only_with_an_amendment(outcome):
    found = problem(outcome, 3)
    assert found.field == "points" and "only with outcome `amended`" in found.message


def test_an_amendment_names_its_new_points():
    assert problem("amended").message == "an amendment gives the new points"


@pytest.mark.parametrize("points", [0, 7])
def test_amended_points_stay_within_what_an_inspector_could_give_by_rule_8(points):
    found = problem("amended", points)
    assert found.rule == "docs/rules.md rule 8"
    assert found.message == "points for B2-01 must lie between 1 and 6"


def test_an_amendment_to_the_same_points_is_an_upheld_appeal():
    assert "decide `upheld` instead" in problem("amended", 4, current=4).message
