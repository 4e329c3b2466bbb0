"""The materialised snapshot (practitioner_state.state): a person's derived state as plain JSON-ready
mappings, and back. Compact lists rather than objects, since a roster or batch decodes thousands."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from .standing import (
    Measure,
    PersonState,
    RegistrationSpan,
    RepairCredit,
    Suspension,
    Termination,
    YearStanding,
)


def _d(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _p(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value is not None else None


def state_to_mapping(state: PersonState) -> dict[str, Any]:
    return {
        "years": [
            {
                "year": y.year,
                "points_recorded": y.points_recorded,
                "points_repaired": y.points_repaired,
                "max_single_event": y.max_single_event,
                "tier": y.tier,
            }
            for y in state.years
        ],
        "measures": [[m.kind, m.year, _d(m.triggered_on), m.violation_id] for m in state.measures],
        "suspensions": [
            [_d(s.start), _d(s.end), s.months, s.year, s.violation_id, s.basis, s.shortened_by_months]
            for s in state.suspensions
        ],
        "terminations": [
            [
                _d(t.start),
                _d(t.barred_until),
                t.bar_years,
                t.year,
                t.violation_id,
                t.basis,
                t.shortened_by_months,
            ]
            for t in state.terminations
        ],
        "repairs": [
            [r.repair_id, r.year, _d(r.approved_on), r.activity, r.points, r.months_shortened, r.shortened]
            for r in state.repairs
        ],
        "registrations": [
            [
                s.registration_id,
                s.institution_code,
                _d(s.start),
                _d(s.end),
                s.ended_by,
                s.termination_violation_id,
            ]
            for s in state.registrations
        ],
        "decisions": list(state.decisions),
    }


def state_from_mapping(data: Mapping[str, Any]) -> PersonState:
    return PersonState(
        years=tuple(YearStanding(**y) for y in data["years"]),
        measures=tuple(Measure(k, y, _p(d), v) for k, y, d, v in data["measures"]),  # type: ignore[arg-type]
        repairs=tuple(
            RepairCredit(i, y, _p(d), a, p, m, s)  # type: ignore[arg-type]
            for i, y, d, a, p, m, s in data["repairs"]
        ),
        decisions=tuple(data["decisions"]),
        **_eligibility_parts(data),
    )


def eligibility_state_from_mapping(data: Mapping[str, Any]) -> PersonState:
    """Only what eligibility (rule 18) reads: registrations, suspensions and terminations. A batch or
    a roster decodes thousands of snapshots to answer one question each; points, measures and
    repairs are left empty, so this state answers `eligibility_on` and nothing else."""
    return PersonState(**_eligibility_parts(data))


def _eligibility_parts(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "suspensions": tuple(
            Suspension(_p(a), _p(b), m, y, v, basis, sh)  # type: ignore[arg-type]
            for a, b, m, y, v, basis, sh in data["suspensions"]
        ),
        "terminations": tuple(
            Termination(_p(a), _p(b), n, y, v, basis, sh)  # type: ignore[arg-type]
            for a, b, n, y, v, basis, sh in data["terminations"]
        ),
        "registrations": tuple(
            RegistrationSpan(i, c, _p(a), _p(b), e, v)  # type: ignore[arg-type]
            for i, c, a, b, e, v in data["registrations"]
        ),
    }
