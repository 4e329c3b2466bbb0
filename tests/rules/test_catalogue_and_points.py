"""Rules 7 and 8: the behaviour catalogue, default points by responsibility, explicit points in band."""

from __future__ import annotations

import pytest
from rules_builders import HEBEI, QINGHAI

from points_service.rules.policy import PolicyError

PROFILES = (HEBEI, QINGHAI)

# docs/rules.md rule 7, copied from the specification (not read from catalogue.toml): code -> band
RULE_7_TABLE = {
    "B1-01": 1,
    "B1-02": 1,
    "B1-03": 1,
    "B1-99": 1,
    "B2-01": 2,
    "B2-02": 2,
    "B2-99": 2,
    "B3-01": 3,
    "B3-02": 3,
    "B3-99": 3,
    "B4-01": 4,
    "B4-02": 4,
    "B4-99": 4,
}
# rule 7: points (general / important / main) of each band
RULE_7_POINTS = {1: (1, 2, 3), 2: (4, 5, 6), 3: (7, 8, 9), 4: (10, 11, 12)}
RESPONSIBILITY_INDEX = {"general": 0, "important": 1, "main": 2}

DEFAULT_POINT_ROWS = [
    pytest.param(
        profile, code, responsibility, RULE_7_POINTS[band][index], id=f"{profile}-{code}-{responsibility}"
    )
    for profile in PROFILES
    for code, band in RULE_7_TABLE.items()
    for responsibility, index in RESPONSIBILITY_INDEX.items()
]


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rule_7_catalogue_holds_exactly_the_thirteen_national_codes_in_their_bands(policies, profile_id):
    policy = policies.get(profile_id)
    assert {code: b.band for code, b in policy.catalogue.items()} == RULE_7_TABLE


@pytest.mark.parametrize(("profile_id", "code", "responsibility", "expected"), DEFAULT_POINT_ROWS)
def test_rule_7_default_points_follow_band_and_responsibility(
    policies, profile_id, code, responsibility, expected
):
    assert policies.get(profile_id).points_for(code, responsibility) == expected


# rule 8: (code, adjustment, lowest allowed, highest allowed)
RULE_8_RANGES = [
    ("B1-01", None, 1, 3),
    ("B2-01", None, 4, 6),
    ("B3-01", None, 7, 9),
    ("B4-01", None, 10, 12),
    # band 1 mitigated stays 1–3: there is no band below band 1
    ("B1-02", "mitigated", 1, 3),
    ("B2-02", "mitigated", 1, 3),
    ("B3-02", "mitigated", 4, 6),
    ("B4-02", "mitigated", 7, 9),
    ("B1-99", "aggravated", 4, 6),
    ("B2-99", "aggravated", 7, 9),
    ("B3-99", "aggravated", 10, 12),
    # band 4 aggravated stays 10–12: points are never above 12 per event
    ("B4-99", "aggravated", 10, 12),
]
RANGE_ROWS = [
    pytest.param(profile, code, adjustment, low, high, id=f"{profile}-{code}-{adjustment or 'plain'}")
    for profile in PROFILES
    for code, adjustment, low, high in RULE_8_RANGES
]


@pytest.mark.parametrize(("profile_id", "code", "adjustment", "low", "high"), RANGE_ROWS)
def test_rule_8_allowed_range_moves_one_band_with_adjustment_and_stays_within_1_to_12(
    policies, profile_id, code, adjustment, low, high
):
    policy = policies.get(profile_id)
    assert policy.allowed_points(code, adjustment) == (low, high)


@pytest.mark.parametrize(("profile_id", "code", "adjustment", "low", "high"), RANGE_ROWS)
def test_rule_8_explicit_points_on_both_edges_of_the_range_are_accepted(
    policies, profile_id, code, adjustment, low, high
):
    policy = policies.get(profile_id)
    for responsibility in RESPONSIBILITY_INDEX:
        assert policy.points_for(code, responsibility, points=low, adjustment=adjustment) == low
        assert policy.points_for(code, responsibility, points=high, adjustment=adjustment) == high


@pytest.mark.parametrize(("profile_id", "code", "adjustment", "low", "high"), RANGE_ROWS)
def test_rule_8_explicit_points_just_outside_the_range_are_refused_naming_rule_8(
    policies, profile_id, code, adjustment, low, high
):
    policy = policies.get(profile_id)
    for outside in (low - 1, high + 1):
        with pytest.raises(PolicyError) as caught:
            policy.points_for(code, "main", points=outside, adjustment=adjustment)
        assert caught.value.rule == "docs/rules.md rule 8"
        assert caught.value.field == "points"
        assert f"between {low} and {high}" in str(caught.value)


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rule_8_points_of_another_band_are_refused_without_adjustment(policies, profile_id):
    policy = policies.get(profile_id)
    with pytest.raises(PolicyError) as caught:
        policy.points_for("B1-01", "general", points=4)
    assert caught.value.rule == "docs/rules.md rule 8"
    with pytest.raises(PolicyError):
        policy.points_for("B4-01", "general", points=9)


@pytest.mark.parametrize("profile_id", PROFILES)
@pytest.mark.parametrize("points", [None, 3])
def test_rule_7_an_unknown_behaviour_code_is_refused(policies, profile_id, points):
    with pytest.raises(PolicyError) as caught:
        policies.get(profile_id).points_for("B5-01", "main", points=points)
    assert caught.value.rule == "docs/rules.md rule 7"
    assert caught.value.field == "behaviour_code"
    assert "B5-01" in str(caught.value)


@pytest.mark.parametrize("profile_id", PROFILES)
@pytest.mark.parametrize("adjustment", ["mitigated", "aggravated"])
def test_rule_8_an_adjusted_decision_without_explicit_points_is_refused(policies, profile_id, adjustment):
    with pytest.raises(PolicyError) as caught:
        policies.get(profile_id).points_for("B2-01", "important", adjustment=adjustment)
    assert caught.value.rule == "docs/rules.md rule 8"
    assert caught.value.field == "points"


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rule_8_an_unknown_adjustment_is_refused(policies, profile_id):
    with pytest.raises(PolicyError) as caught:
        policies.get(profile_id).points_for("B2-01", "important", points=5, adjustment="lenient")
    assert caught.value.rule == "docs/rules.md rule 8"
    assert caught.value.field == "adjustment"


@pytest.mark.parametrize("profile_id", PROFILES)
def test_rule_7_an_unknown_responsibility_level_is_refused(policies, profile_id):
    with pytest.raises(PolicyError) as caught:
        policies.get(profile_id).points_for("B2-01", "secondary")
    assert caught.value.rule == "docs/rules.md rule 7"
    assert caught.value.field == "responsibility"
