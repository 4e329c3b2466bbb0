"""The checks a scoring decision must pass before it is recorded (docs/rules.md rules 4, 6, 7, 8, 27):
pure, so that a decision posted to the API and a row of an imported file are refused alike, in the
same words. Each problem is a PolicyError naming its rule and the field it is about."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from .policy import Policy, PolicyError, PolicySet
from .standing import RegistrationSpan


def score_decision(
    policies: PolicySet,
    *,
    region_code: str,
    behaviour_code: str,
    responsibility: str,
    occurred_on: dt.date,
    decided_on: dt.date,
    points: int | None,
    adjustment: str | None,
    adjustment_reason: str | None,
    today: dt.date,
) -> tuple[Policy, int]:
    """The profile in force at the institution's region on `decided_on` and the decision's points,
    after the checks of rules 6 and 8; raises PolicyError."""
    if decided_on > today:
        raise PolicyError(
            f"decided_on {decided_on.isoformat()} is in the future (today is {today.isoformat()})",
            rule="docs/rules.md rule 6",
            field="decided_on",
        )
    if occurred_on > decided_on:
        raise PolicyError(
            "occurred_on must not be after decided_on", rule="docs/rules.md rule 6", field="occurred_on"
        )
    if adjustment is not None and not (adjustment_reason or "").strip():
        raise PolicyError(
            "an adjusted decision needs an adjustment_reason",
            rule="docs/rules.md rule 8",
            field="adjustment_reason",
        )
    if adjustment is None and adjustment_reason:
        raise PolicyError(
            "adjustment_reason is only for an adjusted decision",
            rule="docs/rules.md rule 8",
            field="adjustment_reason",
        )
    policy = policies.profile_for(region_code, decided_on)
    return policy, policy.points_for(behaviour_code, responsibility, points=points, adjustment=adjustment)


def registration_problem(
    spans: Iterable[RegistrationSpan], *, practitioner_code: str, institution_code: str, occurred_on: dt.date
) -> PolicyError | None:
    """Rules 4 and 6: the person was registered at the institution on the day of the conduct."""
    if any(s.institution_code == institution_code and s.covers(occurred_on) for s in spans):
        return None
    return PolicyError(
        f"practitioner {practitioner_code} was not registered at {institution_code} on "
        f"{occurred_on.isoformat()}",
        rule="docs/rules.md rules 4 and 6",
        field="occurred_on",
    )
