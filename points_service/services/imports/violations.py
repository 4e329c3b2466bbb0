"""Scoring decisions from a CSV file: each row checked as POST /v1/violations checks a decision (the
schema's words, then rules.decisions), written in bulk, and each person touched recomputed once from
their ledger through services.state, so that their measures and sanctions are those the decisions
would have brought posted one by one in decision order."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...persistence import queries
from ...persistence.models import Institution, Practitioner, Violation
from ...persistence.sql import rows_where_in
from ...rules import standing as rules
from ...rules.calendar import local_date
from ...rules.decisions import registration_problem
from ...rules.identifiers import identifier_problem, text_problem
from ...rules.policy import ADJUSTMENTS, RESPONSIBILITIES, Policy, PolicyError, PolicySet
from ..violations import RecordViolation, different_content
from .columns import check, check_code, legal_date
from .files import Record, RowErrors
from .registrations import StoredPerson, load_people

# the limits of the API's ViolationCreate fields, in marshmallow's words where it is marshmallow's check
_LENGTHS = {
    "case_ref": (1, 100),
    "behaviour_code": (1, 16),
    "adjustment_reason": (1, 2000),
    "description": (0, 4000),
}
_INTEGER = re.compile(r"[+-]?\d+")
_POINTS = (1, 12)
# ids no ledger entry or decision has: the decisions of the file while they are only being checked
_UNWRITTEN = 1 << 62


@dataclass(frozen=True)
class Candidate:
    """A row that passed every check of its own: the decision, its parties' ids and its points."""

    line: int
    cmd: RecordViolation
    fingerprint: str
    person: int
    institution: int
    profile_id: str
    points: int


@dataclass
class CheckedViolations:
    rows: list[Candidate]  # in decision order (decided_on, then the file's order)
    people: dict[int, StoredPerson] = field(default_factory=dict)
    existing: int = 0  # rows recorded before with the same content, or repeated in the file


def _length_problem(value: str, low: int, high: int) -> str | None:
    return None if low <= len(value) <= high else f"Length must be between {low} and {high}."


def _one_of(value: str, choices: Sequence[str]) -> str | None:
    return None if value in choices else f"Must be one of: {', '.join(choices)}."


def _text(errors: RowErrors, line: int, column: str, value: str) -> bool:
    low, high = _LENGTHS[column]
    return check(errors, line, column, _length_problem(value, low, high) or text_problem(value))


def _points(errors: RowErrors, line: int, value: str) -> int | None | bool:
    """The explicit points (None: none given), or False with the problem recorded."""
    if not value:
        return None
    if not _INTEGER.fullmatch(value):
        return check(errors, line, "points", "Not a valid integer.")
    points = int(value)
    if not _POINTS[0] <= points <= _POINTS[1]:
        low, high = _POINTS
        return check(
            errors,
            line,
            "points",
            f"Must be greater than or equal to {low} and less than or equal to {high}.",
        )
    return points


def _command(errors: RowErrors, line: int, values: list[str]) -> RecordViolation | None:
    """The decision a row posts, checked field by field as the API's schema checks the body; an
    empty optional column is a field left out."""
    case_ref, person, institution, behaviour, responsibility, occurred, decided = values[:7]
    points_text, adjustment, reason, description = values[7:]
    ok = _text(errors, line, "case_ref", case_ref) and check(
        errors, line, "case_ref", identifier_problem(case_ref)
    )
    ok = check_code(errors, line, "practitioner_code", person) and ok
    ok = check_code(errors, line, "institution_code", institution) and ok
    ok = _text(errors, line, "behaviour_code", behaviour) and ok
    ok = check(errors, line, "responsibility", _one_of(responsibility, RESPONSIBILITIES)) and ok
    occurred_on = legal_date(errors, line, "occurred_on", occurred)
    decided_on = legal_date(errors, line, "decided_on", decided)
    points = _points(errors, line, points_text)
    ok = (not adjustment or check(errors, line, "adjustment", _one_of(adjustment, ADJUSTMENTS))) and ok
    ok = (not reason or _text(errors, line, "adjustment_reason", reason)) and ok
    ok = (not description or _text(errors, line, "description", description)) and ok
    if not ok or occurred_on is None or decided_on is None or points is False:
        return None
    return RecordViolation(
        case_ref=case_ref,
        practitioner_code=person,
        institution_code=institution,
        behaviour_code=behaviour,
        responsibility=responsibility,
        occurred_on=occurred_on,
        decided_on=decided_on,
        points=points if isinstance(points, int) and not isinstance(points, bool) else None,
        adjustment=adjustment or None,
        adjustment_reason=reason or None,
        description=description or None,
    )


def _policy_error(errors: RowErrors, line: int, problem: PolicyError) -> None:
    errors.add(line, f"{problem.field}: {problem}" if problem.field else str(problem))


def check_violations(
    session: Session,
    records: Iterator[Record],
    errors: RowErrors,
    *,
    policies: PolicySet,
    now: dt.datetime,
    lock: bool = True,
) -> CheckedViolations:
    """Every row checked as the API checks a posted decision: the parties exist, the case is new
    (or recorded with the same content: skipped), the points and dates keep rules 6 to 8 and 27, and
    the person was registered at the institution on the day of the conduct (rules 4 and 6), as they
    would be when the decisions before it in decision order had been posted. With `lock` the people
    scored are locked first (not in a dry run: its transaction is read-only)."""
    parsed = [(line, cmd) for line, values in records if (cmd := _command(errors, line, values)) is not None]
    people = _by_key(
        session,
        select(Practitioner.code, Practitioner.id),
        Practitioner.code,
        {c.practitioner_code for _, c in parsed},
    )
    institutions = _by_key(
        session,
        select(Institution.code, Institution.id, Institution.region_code),
        Institution.code,
        {c.institution_code for _, c in parsed},
    )
    stored = _by_key(
        session,
        select(Violation.case_ref, Violation.fingerprint),
        Violation.case_ref,
        {c.case_ref for _, c in parsed},
    )
    checked = CheckedViolations([])
    seen: dict[str, tuple[str, int]] = {}  # case_ref -> (fingerprint, line) of the rows kept
    today = local_date(now)
    for line, cmd in parsed:
        person, place = people.get(cmd.practitioner_code), institutions.get(cmd.institution_code)
        if place is None:
            errors.add(line, f"institution_code: no institution {cmd.institution_code}")
        if person is None:
            errors.add(line, f"practitioner_code: no practitioner {cmd.practitioner_code}")
        if person is None or place is None:
            continue
        fingerprint = cmd.fingerprint()
        earlier = stored.get(cmd.case_ref) or seen.get(cmd.case_ref)
        if earlier is not None:
            if earlier[0] == fingerprint:
                checked.existing += 1
            elif cmd.case_ref in stored:
                errors.add(line, f"case_ref: {different_content(cmd.case_ref)}")
            else:
                errors.add(
                    line, f"case_ref: case {cmd.case_ref} is on line {earlier[1]} with different content"
                )
            continue
        scored = _score(errors, line, cmd, place[1], policies, today)
        if scored is None:
            continue
        policy, points = scored
        seen[cmd.case_ref] = (fingerprint, line)
        checked.rows.append(Candidate(line, cmd, fingerprint, person[0], place[0], policy.id, points))
    checked.rows.sort(key=lambda c: (c.cmd.decided_on, c.line))
    codes = {c.person: c.cmd.practitioner_code for c in checked.rows}
    if lock:  # as a posted decision does: no one else changes their ledgers until the import ends
        queries.lock_practitioners(session, codes)
    checked.people = load_people(session, codes)
    _check_registered(checked, errors, policies)
    checked.rows = [c for c in checked.rows if c.line not in errors]
    return checked


def _score(
    errors: RowErrors, line: int, cmd: RecordViolation, region_code: str, policies: PolicySet, today: dt.date
) -> tuple[Policy, int] | None:
    """The profile and the points (rules.decisions, as the API scores), or None with the problem."""
    try:
        return cmd.score(policies, region_code=region_code, today=today)
    except PolicyError as problem:
        _policy_error(errors, line, problem)
        return None


def _by_key(session: Session, query: Any, column: Any, keys: set[str]) -> dict[str, tuple]:
    """{first value: the rest of the row} of the rows of `query` whose `column` is one of `keys`."""
    return {row[0]: tuple(row[1:]) for row in rows_where_in(session, query, column, keys)}


def _check_registered(checked: CheckedViolations, errors: RowErrors, policies: PolicySet) -> None:
    """Rules 4 and 6 for every row, against the person's registrations as they stand when the row's
    decision would be posted: as stored, unless a decision of the file terminates the person (rule
    17), which ends their registrations for the decisions after it."""
    by_person: dict[int, list[tuple[int, Candidate]]] = defaultdict(list)
    for number, candidate in enumerate(checked.rows):
        by_person[candidate.person].append((_UNWRITTEN + number, candidate))
    for pid, rows in by_person.items():
        person = checked.people[pid]
        before = person.derive(policies) if person.ledger_size else None
        spans = before.registrations if before else tuple(rules.registration_spans(person.registrations, ()))
        after = _derive_with(person, rows, policies)
        if after.terminations == (before.terminations if before else ()):
            for _, candidate in rows:
                _require_registered(errors, candidate, spans)
            continue
        accepted: list[tuple[int, Candidate]] = []
        for row in rows:  # one at a time, in decision order, as posting them would
            state = _derive_with(person, accepted, policies) if accepted else before
            if _require_registered(errors, row[1], state.registrations if state else spans):
                accepted.append(row)


def _derive_with(
    person: StoredPerson, rows: Sequence[tuple[int, Candidate]], policies: PolicySet
) -> rules.PersonState:
    """The person's state with the decisions of `rows` (entry and decision ids: the number given)."""
    return rules.derive_state(
        decisions=[
            *person.decisions,
            *(rules.Decision(n, n, c.cmd.decided_on, c.points, c.profile_id) for n, c in rows),
        ],
        reversals=person.reversals,
        repairs=person.repairs,
        registrations=person.registrations,
        policies=policies.profiles,
    )


def _require_registered(
    errors: RowErrors, candidate: Candidate, spans: Sequence[rules.RegistrationSpan]
) -> bool:
    cmd = candidate.cmd
    problem = registration_problem(
        spans,
        practitioner_code=cmd.practitioner_code,
        institution_code=cmd.institution_code,
        occurred_on=cmd.occurred_on,
    )
    if problem is not None:
        _policy_error(errors, candidate.line, problem)
    return problem is None
