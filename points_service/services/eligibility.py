"""The read side: eligibility for one person, a batch, or an institution's roster (docs/rules.md rule 18).

Each answer is computed from the materialised snapshot, so a read is one indexed lookup.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Row

from ..persistence import queries
from ..persistence.engine import Reader
from ..rules import standing as rules
from .access import Principal, require
from .errors import NotFound
from .state import eligibility_state


@dataclass(frozen=True)
class Answer:
    """May this person's services be settled by the fund on a day (rule 18)."""

    practitioner_code: str
    eligibility: rules.Eligibility


def _unknown(code: str, at: dt.date) -> Answer:
    return Answer(code, rules.Eligibility(at, False, "unknown", "no such practitioner", None))


def _visible(principal: Principal, snapshot: Row, state: rules.PersonState) -> bool:
    """Eligibility is national (rule 5): every institution where the person is registered may read it."""
    if principal.is_national:
        return True
    if principal.role == "practitioner":
        return principal.practitioner_id == snapshot.practitioner_id
    return any(s.institution_code == principal.institution_code for s in state.registrations)


def _require_own_institution(principal: Principal, institution_code: str | None) -> None:
    """Eligibility is national, but where else a person works is not a hospital's business: an HR
    system asking about another institution is asking about an institution it cannot see (404)."""
    if principal.role == "hr_system" and institution_code not in (None, principal.institution_code):
        raise NotFound(f"no institution {institution_code}")


def eligibility_for(
    reader: Reader, principal: Principal, code: str, *, at: dt.date, institution_code: str | None
) -> Answer:
    require(principal, "practitioners:read")
    _require_own_institution(principal, institution_code)
    snapshot = queries.state_by_code(reader, code)
    state = eligibility_state(snapshot)
    if snapshot is None or not _visible(principal, snapshot, state):
        raise NotFound(f"no practitioner {code}")
    return Answer(code, rules.eligibility_on(state, at, institution_code))


def eligibility_batch(
    reader: Reader, principal: Principal, codes: Sequence[str], *, at: dt.date, institution_code: str | None
) -> list[Answer]:
    """Results in request order; unknown codes, and people outside the caller's scope, are `unknown`."""
    require(principal, "eligibility:batch")
    _require_own_institution(principal, institution_code)
    snapshots = {s.practitioner_code: s for s in queries.states_by_codes(reader, set(codes))}
    results = []
    for code in codes:
        snapshot = snapshots.get(code)
        state = eligibility_state(snapshot)
        if snapshot is None or not _visible(principal, snapshot, state):
            results.append(_unknown(code, at))
        else:
            results.append(Answer(code, rules.eligibility_on(state, at, institution_code)))
    return results


def roster(
    reader: Reader,
    principal: Principal,
    institution_code: str,
    *,
    at: dt.date,
    after: str | None,
    limit: int,
) -> tuple[list[Answer], str | None]:
    """The institution's staff registered on `at` (as the institution recorded them), with eligibility."""
    require(principal, "roster:read")
    institution_id = queries.institution_id(reader, institution_code)
    if institution_id is None or (
        principal.role == "hr_system" and principal.institution_id != institution_id
    ):
        raise NotFound(f"no institution {institution_code}")
    snapshots = queries.roster_page(reader, institution_id, at=at, after=after, limit=limit + 1)
    page, more = snapshots[:limit], len(snapshots) > limit
    items = [
        Answer(s.practitioner_code, rules.eligibility_on(eligibility_state(s), at, institution_code))
        for s in page
    ]
    return items, (page[-1].practitioner_code if more and page else None)


__all__ = ["eligibility_batch", "eligibility_for", "roster"]
