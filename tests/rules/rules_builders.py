"""Pure builders for the rules tests: short ways to write ledgers (docs/rules.md §2–§5).

Imported as a plain module (tests/rules is put on sys.path by pytest's default 'prepend' import
mode); the name is prefixed so it cannot collide with helpers of other test directories.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from points_service.rules.policy import Policy
from points_service.rules.standing import (
    Decision,
    PersonState,
    Registration,
    Repair,
    Reversal,
    derive_state,
)

HEBEI = "hebei-2025"
QINGHAI = "qinghai-2025"
INSTITUTION = "H0001"


def day(value: str | dt.date) -> dt.date:
    """A date from 'YYYY-MM-DD' (or a date, returned as is)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def decision(
    entry_id: int, on: str | dt.date, points: int, profile: str = HEBEI, violation_id: int | None = None
) -> Decision:
    """A scoring decision; its violation id defaults to its entry id."""
    return Decision(
        entry_id=entry_id,
        violation_id=entry_id if violation_id is None else violation_id,
        decided_on=day(on),
        points=points,
        profile_id=profile,
    )


def repair(
    entry_id: int, on: str | dt.date, activity: str, profile: str = HEBEI, repair_id: int | None = None
) -> Repair:
    """An approved repair application; its repair id defaults to its entry id."""
    return Repair(
        entry_id=entry_id,
        repair_id=entry_id if repair_id is None else repair_id,
        approved_on=day(on),
        activity=activity,
        profile_id=profile,
    )


def reversal(entry_id: int, reverses: int, on: str | dt.date) -> Reversal:
    return Reversal(entry_id=entry_id, reverses_entry_id=reverses, on=day(on))


def registration(
    registration_id: int,
    start: str | dt.date,
    end: str | dt.date | None = None,
    institution: str = INSTITUTION,
) -> Registration:
    return Registration(
        registration_id=registration_id,
        institution_code=institution,
        start=day(start),
        end=None if end is None else day(end),
    )


def derive(
    profiles: Mapping[str, Policy],
    decisions: Iterable[Decision] = (),
    *,
    reversals: Iterable[Reversal] = (),
    repairs: Iterable[Repair] = (),
    registrations: Iterable[Registration] = (),
) -> PersonState:
    return derive_state(
        decisions=list(decisions),
        reversals=list(reversals),
        repairs=list(repairs),
        registrations=list(registrations),
        policies=profiles,
    )


def suspension_ranges(state: PersonState) -> list[tuple[dt.date, dt.date, int]]:
    """(start, end, months) of every suspension segment, in the state's order."""
    return [(s.start, s.end, s.months) for s in state.suspensions]


def measure_kinds(state: PersonState, year: int | None = None) -> list[str]:
    return [m.kind for m in state.measures if year is None or m.year == year]
