"""Imported decisions written as a posted decision writes them: the violation row and its ledger
entry (in bulk, persistence.copy), one `violation.recorded` event each, then every person touched
recomputed once from their whole ledger (services.state through snapshots.apply_derived)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...persistence.copy import LEDGER_COLUMNS, VIOLATION_COLUMNS, copy_rows, reserve_ids
from ...persistence.models import LedgerEntry, Violation
from ...persistence.sql import rows_where_in
from ...rules import standing as rules
from ...rules.calendar import score_year
from ...rules.policy import PolicySet
from .. import events
from ..violations import recorded_event_data, recorded_facts
from .snapshots import Derived, PersonRow, apply_derived
from .violations import Candidate, CheckedViolations

_PROGRESS_EVERY = 1024  # people recomputed between two reports


def import_violations(
    session: Session,
    checked: CheckedViolations,
    rows: Sequence[Candidate],
    *,
    actor: str,
    policies: PolicySet,
    now: dt.datetime,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Write the decisions (`rows`, in decision order: their ids keep it, as posting them in that
    order would), announce each, then bring each person's snapshot, feed and measures up to date.

    A person's eligibility events are those of `plan`: the status the feed last said against the
    status today, so a person suspended and reinstated within the file's past is announced nothing,
    and one suspended today once."""
    session.flush()  # the caller's objects before the rows written beside the unit of work
    violation_ids = reserve_ids(session, Violation, len(rows))
    entry_ids = reserve_ids(session, LedgerEntry, len(rows))
    copy_rows(
        session,
        Violation,
        VIOLATION_COLUMNS,
        (_violation_row(vid, c, actor=actor, now=now) for vid, c in zip(violation_ids, rows, strict=True)),
    )
    copy_rows(
        session,
        LedgerEntry,
        LEDGER_COLUMNS,
        (
            (
                eid,
                c.person,
                "decision",
                score_year(c.cmd.decided_on),
                c.cmd.decided_on,
                c.points,
                vid,
                c.profile_id,
                now,
                actor,
            )
            for eid, vid, c in zip(entry_ids, violation_ids, rows, strict=True)
        ),
    )
    events.emit_many(
        session,
        (_recorded_event(vid, c) for vid, c in zip(violation_ids, rows, strict=True)),
        now=now,
    )
    added: dict[int, int] = {}  # person id -> decisions of the file
    decided_before = {pid: person.ledger_size > 0 for pid, person in checked.people.items()}
    for eid, vid, c in zip(entry_ids, violation_ids, rows, strict=True):
        person = checked.people[c.person]
        person.decisions.append(rules.Decision(eid, vid, c.cmd.decided_on, c.points, c.profile_id))
        person.ledger_size += 1
        added[c.person] = added.get(c.person, 0) + 1
    people = (
        (Derived(PersonRow(pid, p.code), p.derive(policies), p.ledger_size, decided_before[pid]), added[pid])
        for pid, p in ((pid, checked.people[pid]) for pid in added)
    )
    apply_derived(session, _counted(people, len(added), progress), now=now)


def recorded_meanwhile(session: Session, rows: Sequence[Candidate]) -> list[Candidate]:
    """The rows whose case_ref the database holds now. The check found none of them stored (those it
    found were skipped or refused), so another writer, the API, recorded them since."""
    stored = {
        ref
        for (ref,) in rows_where_in(
            session, select(Violation.case_ref), Violation.case_ref, [c.cmd.case_ref for c in rows]
        )
    }
    return [c for c in rows if c.cmd.case_ref in stored]


def _counted(
    people: Iterator[tuple[Derived, int]], count: int, progress: Callable[[int], None] | None
) -> Iterator[Derived]:
    """The people's states, telling `progress` every so often how many decisions are done."""
    done = 0
    for number, (derived, decisions) in enumerate(people, start=1):
        yield derived
        done += decisions
        if progress is not None and (number % _PROGRESS_EVERY == 0 or number == count):
            progress(done)


def _violation_row(vid: int, c: Candidate, *, actor: str, now: dt.datetime) -> tuple:
    cmd = c.cmd
    return (
        vid,
        cmd.case_ref,
        c.person,
        c.institution,
        cmd.behaviour_code,
        cmd.responsibility,
        cmd.adjustment,
        cmd.adjustment_reason,
        c.points,
        cmd.occurred_on,
        cmd.decided_on,
        score_year(cmd.decided_on),
        c.profile_id,
        cmd.description,
        "[]",  # evidence_refs: a file has no column for them
        c.fingerprint,
        now,
        actor,
    )


def _recorded_event(vid: int, c: Candidate) -> events.NewEvent:
    cmd = c.cmd
    facts = recorded_facts(
        case_ref=cmd.case_ref,
        practitioner_code=cmd.practitioner_code,
        institution_code=cmd.institution_code,
        behaviour_code=cmd.behaviour_code,
        points=c.points,
        decided_on=cmd.decided_on,
    )
    return events.NewEvent(
        "violation.recorded",
        recorded_event_data(vid, facts, score_year=score_year(cmd.decided_on)),
        practitioner_id=c.person,
        practitioner_code=cmd.practitioner_code,
        institution_id=c.institution,
    )
