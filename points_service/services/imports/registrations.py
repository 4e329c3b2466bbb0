"""Registrations from a CSV file: checked against the people's stored registrations and bars, written
in bulk, and each person's snapshot brought up to date through services.state like every write."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...persistence import queries
from ...persistence.copy import copy_rows, reserve_ids
from ...persistence.models import Institution, LedgerEntry, Practitioner, Registration
from ...persistence.sql import rows_where_in
from ...rules import standing as rules
from ...rules.policy import PolicySet
from .columns import check_code, legal_date
from .files import Record, RowErrors
from .snapshots import Derived, PersonRow, apply_derived


@dataclass
class StoredPerson:
    """One practitioner's ledger and registrations as stored, for rules.derive_state."""

    code: str
    decisions: list[rules.Decision] = field(default_factory=list)
    reversals: list[rules.Reversal] = field(default_factory=list)
    repairs: list[rules.Repair] = field(default_factory=list)
    registrations: list[rules.Registration] = field(default_factory=list)
    ledger_size: int = 0

    def derive(self, policies: PolicySet) -> rules.PersonState:
        return rules.derive_state(
            decisions=self.decisions,
            reversals=self.reversals,
            repairs=self.repairs,
            registrations=self.registrations,
            policies=policies.profiles,
        )


# (practitioner_id, institution_id, institution_code, start, end)
RegistrationRow = tuple[int, int, str, dt.date, dt.date | None]
# a span a person holds at an institution: (start, end, the line of the file, or None when stored)
_Held = tuple[dt.date, dt.date | None, int | None]


@dataclass
class CheckedRegistrations:
    rows: list[tuple[int, RegistrationRow]]  # (line, row) of the rows to write
    people: dict[int, StoredPerson] = field(default_factory=dict)
    existing: set[int] = field(default_factory=set)  # lines equal to what is stored (skip_existing)


def load_people(session: Session, codes_by_id: Mapping[int, str]) -> dict[int, StoredPerson]:
    """The ledgers and registrations of many people at once (a few chunked queries)."""
    people = {pid: StoredPerson(code) for pid, code in codes_by_id.items()}
    ledger = select(
        LedgerEntry.practitioner_id,
        LedgerEntry.id,
        LedgerEntry.kind,
        LedgerEntry.effective_on,
        LedgerEntry.points,
        LedgerEntry.violation_id,
        LedgerEntry.reverses_entry_id,
        LedgerEntry.repair_id,
        LedgerEntry.activity,
        LedgerEntry.profile_id,
    ).order_by(LedgerEntry.id)
    for pid, eid, kind, on, points, vid, reverses, repair_id, activity, profile in rows_where_in(
        session, ledger, LedgerEntry.practitioner_id, list(people)
    ):
        person = people[pid]
        person.ledger_size += 1
        if kind == "decision":
            person.decisions.append(rules.Decision(eid, vid, on, points, profile))
        elif kind == "reversal":
            person.reversals.append(rules.Reversal(eid, reverses, on))
        else:
            person.repairs.append(rules.Repair(eid, repair_id, on, activity, profile))
    registrations = select(
        Registration.practitioner_id,
        Registration.id,
        Institution.code,
        Registration.start_date,
        Registration.end_date,
    ).join(Institution, Institution.id == Registration.institution_id)
    for pid, rid, institution_code, start, end in rows_where_in(
        session, registrations, Registration.practitioner_id, list(people)
    ):
        people[pid].registrations.append(rules.Registration(rid, institution_code, start, end))
    return people


def _parsed(
    records: Iterator[Record], errors: RowErrors
) -> list[tuple[int, str, str, dt.date, dt.date | None]]:
    """The rows whose codes and dates are well formed, as (line, person, institution, start, end)."""
    parsed = []
    for line, (person, institution, start_text, end_text) in records:
        ok = check_code(errors, line, "practitioner_code", person)
        ok = check_code(errors, line, "institution_code", institution) and ok
        start = legal_date(errors, line, "start_date", start_text)
        end = legal_date(errors, line, "end_date", end_text) if end_text else None
        if start is not None and end is not None and end <= start:
            errors.add(line, f"end_date {end.isoformat()} must be after start_date {start.isoformat()}")
            ok = False
        if ok and start is not None and (end is not None or not end_text):
            parsed.append((line, person, institution, start, end))
    return parsed


def _ids_by_code(session: Session, model: Any, codes: set[str]) -> dict[str, int]:
    query = select(model.id, model.code)
    return {code: rid for rid, code in rows_where_in(session, query, model.code, codes)}


def _held_spans(
    people: Mapping[int, StoredPerson], states: Mapping[int, rules.PersonState]
) -> dict[tuple[int, str], list[_Held]]:
    """What each person holds per institution as stored; a termination has ended some of them."""
    held: dict[tuple[int, str], list[_Held]] = defaultdict(list)
    for pid, person in people.items():
        spans = states[pid].registrations if pid in states else person.registrations
        for span in spans:
            if not (span.end is not None and span.end <= span.start):
                held[(pid, span.institution_code)].append((span.start, span.end, None))
    return held


def check_registrations(
    session: Session,
    records: Iterator[Record],
    errors: RowErrors,
    *,
    policies: PolicySet,
    skip_existing: bool = False,
    lock: bool = True,
) -> CheckedRegistrations:
    """Every row checked: its people and institutions exist, it overlaps nothing stored or earlier
    in the file at the same institution, and no bar forbids it (docs/rules.md rule 17). With `lock`
    the people named are locked before they are read (not in a dry run: its transaction is
    read-only), as every write for a person locks it, so no post meanwhile is left out of the
    snapshots the import rewrites."""
    parsed = _parsed(records, errors)
    people_ids = _ids_by_code(session, Practitioner, {row[1] for row in parsed})
    institutions = _ids_by_code(session, Institution, {row[2] for row in parsed})
    if lock:
        queries.lock_practitioners(session, people_ids.values())
    people = load_people(session, {pid: code for code, pid in people_ids.items()})
    states = {pid: p.derive(policies) for pid, p in people.items() if p.ledger_size}
    held = _held_spans(people, states)
    checked = CheckedRegistrations([], people=people)
    for line, person, institution, start, end in parsed:
        pid, iid = people_ids.get(person), institutions.get(institution)
        if pid is None:
            errors.add(line, f"no practitioner {person}")
        if iid is None:
            errors.add(line, f"no institution {institution}")
        if pid is None or iid is None:
            continue
        spans = held[(pid, institution)]
        clash = next((h for h in spans if _overlaps(start, end, h[0], h[1])), None)
        if clash is not None:
            _report_clash(errors, checked, line, clash, person, institution, start, end, skip_existing)
        elif not _barred(errors, line, person, states.get(pid), start):
            spans.append((start, end, line))
            checked.rows.append((line, (pid, iid, institution, start, end)))
    return checked


def _overlaps(a_start: dt.date, a_end: dt.date | None, b_start: dt.date, b_end: dt.date | None) -> bool:
    return (b_end is None or a_start < b_end) and (a_end is None or b_start < a_end)


def _report_clash(
    errors: RowErrors,
    checked: CheckedRegistrations,
    line: int,
    clash: _Held,
    person: str,
    institution: str,
    start: dt.date,
    end: dt.date | None,
    skip_existing: bool,
) -> None:
    """A row that overlaps a span: a bad row, or with `skip_existing` the stored span itself."""
    since, until, where = clash
    if skip_existing and where is None and since == start:
        if until == end:
            checked.existing.add(line)
        else:
            stored_end = until.isoformat() if until else "none"
            errors.add(
                line,
                f"registration of {person} at {institution} from {start.isoformat()} exists with another "
                f"end_date ({stored_end})",
            )
        return
    place = f"line {where}" if where is not None else "the database"
    errors.add(
        line,
        f"{'duplicate' if since == start else 'overlapping'} registration of {person} at {institution} "
        f"(from {since.isoformat()}, in {place})",
    )


def _barred(
    errors: RowErrors, line: int, person: str, standing: rules.PersonState | None, start: dt.date
) -> bool:
    if standing is None or not any(t.start <= start < t.barred_until for t in standing.terminations):
        return False
    assert standing.barred_until is not None
    errors.add(
        line,
        f"re-registration of {person} is barred until {standing.barred_until.isoformat()} "
        "(docs/rules.md rule 17)",
    )
    return True


def write_registrations(
    session: Session,
    rows: Sequence[tuple[int, int, dt.date, dt.date | None]],
    *,
    actor: str,
    now: dt.datetime,
) -> list[int]:
    """(practitioner_id, institution_id, start, end) rows; an ended one records who ended it."""
    ids = reserve_ids(session, Registration, len(rows))
    copy_rows(
        session,
        Registration,
        (
            "id",
            "practitioner_id",
            "institution_id",
            "start_date",
            "end_date",
            "end_reason",
            "created_at",
            "created_by",
            "ended_at",
            "ended_by",
        ),
        (_registration_row(rid, *row, actor=actor, now=now) for rid, row in zip(ids, rows, strict=True)),
    )
    return ids


def _registration_row(
    rid: int, pid: int, iid: int, start: dt.date, end: dt.date | None, *, actor: str, now: dt.datetime
) -> tuple:
    if end is None:
        return (rid, pid, iid, start, None, None, now, actor, None, None)
    return (rid, pid, iid, start, end, "imported", now, actor, now, actor)


def import_registrations(
    session: Session,
    checked: CheckedRegistrations,
    rows: Sequence[RegistrationRow],
    *,
    actor: str,
    policies: PolicySet,
    now: dt.datetime,
) -> None:
    """Write the rows, then bring each person's snapshot, feed and measures up to date."""
    ids = write_registrations(
        session, [(pid, iid, start, end) for pid, iid, _, start, end in rows], actor=actor, now=now
    )
    touched: dict[int, StoredPerson] = {}
    for rid, (pid, _, institution, start, end) in zip(ids, rows, strict=True):
        person = checked.people[pid]
        person.registrations.append(rules.Registration(rid, institution, start, end))
        touched[pid] = person
    apply_derived(
        session,
        (Derived(PersonRow(pid, p.code), p.derive(policies), p.ledger_size) for pid, p in touched.items()),
        now=now,
    )
