"""The person's file (一人一档): every entry about them, in order, with who did it and when.

The file is paged in the database: each kind of entry comes from its own query, ordered by the
file's order and limited to one page after the cursor; the page is the first entries of their
merge. Two kinds are derived from the snapshot rather than stored (the sanctions, and the
registrations a termination ended); there are few of those per person, and they join the merge.
The order is (the legal date it takes effect, the instant it was recorded, the kind, the row): on
one day, derived entries come last, and a decision before the measure it triggered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, select, tuple_
from sqlalchemy.orm import Session

from ..persistence import queries
from ..persistence.base import UTCDateTime
from ..persistence.models import (
    Appeal,
    Institution,
    LedgerEntry,
    Measure,
    Practitioner,
    Registration,
    RepairApplication,
    Violation,
)
from ..persistence.sql import local_date_of
from ..rules import standing as rules
from ..rules.calendar import local_date
from .access import Actor, Principal, actor_label, key_id_of, readable_violations, sees
from .errors import RuleViolation
from .state import stored_state

# the order of entries recorded at the same instant (a decision and the measure it triggered)
HISTORY_KINDS = (
    "registration_created",
    "decision",
    "appeal_filed",
    "appeal_decided",
    "reversal",
    "repair_submitted",
    "repair_reviewed",
    "repair",
    "measure",
    "measure_completed",
    "measure_cancelled",
    "measure_withdrawn",
    "sanction",
    "registration_ended",
)
RANK = {kind: i for i, kind in enumerate(HISTORY_KINDS)}
# derived entries have no instant: they close their day
LAST_INSTANT = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)

# (on, at, kind rank, source, row): the file's order; `source` tells apart two queries of one kind
Key = tuple[dt.date, dt.datetime, int, int, int]


@dataclass(frozen=True)
class Entry:
    kind: str
    on: dt.date  # the legal date it takes effect
    at: dt.datetime | None  # when it was recorded (None: derived by the rules)
    by: str | None  # who recorded it, as the reader may know them (access.actor_label)
    detail: str
    source: int
    row: int
    score_year: int | None = None
    points: int | None = None
    profile: str | None = None
    violation_id: int | None = None
    case_ref: str | None = None
    institution_code: str | None = None
    behaviour_code: str | None = None
    reverses_entry_id: int | None = None
    repair_id: int | None = None
    appeal_id: int | None = None
    measure_id: int | None = None

    @property
    def key(self) -> Key:
        return (self.on, self.at or LAST_INSTANT, RANK[self.kind], self.source, self.row)


@dataclass(frozen=True)
class Page:
    items: list[Entry]
    next_cursor: str | None


@dataclass(frozen=True)
class _Reader:
    """What every source needs: whose file, read by whom, and where the page starts."""

    session: Session
    principal: Principal
    practitioner: Practitioner
    state: rules.PersonState
    after: Key | None
    limit: int


def history_page(
    session: Session, principal: Principal, practitioner: Practitioner, *, cursor: str | None, limit: int
) -> Page:
    """One page of the file, as the principal may read it (access.sees): a hospital sees the
    decisions made at it and what hangs on them, its own registrations, and the sanctions
    (national, docs/rules.md rule 5); actors outside its scope are named by their role."""
    reader = _Reader(
        session,
        principal,
        practitioner,
        stored_state(queries.snapshot_of(session, practitioner.id)),
        decode(cursor),
        limit,
    )
    candidates = sorted((e for source in SOURCES for e in source(reader)), key=lambda e: e.key)
    page = _name_actors(session, principal, candidates[:limit])
    more = len(candidates) > limit
    return Page(page, encode(page[-1].key) if more and page else None)


# -- the cursor ---------------------------------------------------------------------------------


def encode(key: Key) -> str:
    on, at, rank, source, row = key
    return f"{on.isoformat()}|{at.isoformat()}|{rank}|{source}|{row}"


def decode(cursor: str | None) -> Key | None:
    if cursor is None:
        return None
    try:
        on, at, rank, source, row = cursor.split("|")
        return (dt.date.fromisoformat(on), dt.datetime.fromisoformat(at), int(rank), int(source), int(row))
    except ValueError:
        raise RuleViolation(
            "cursor is not a cursor this service issued", rule="docs/api.md Conventions", field="cursor"
        ) from None


# -- the sources: one query per kind, in the file's order, one page after the cursor --------------


def _page(reader: _Reader, query: Select, on: Any, at: Any, row: Any, kind: str, source: int) -> Select:
    """Order a source's query as the file is ordered and start it after the cursor."""
    at = func.coalesce(at, literal(LAST_INSTANT, UTCDateTime()))
    if reader.after is not None:
        a_on, a_at, a_rank, a_source, a_row = reader.after
        mine = (RANK[kind], source)
        if mine > (a_rank, a_source):
            query = query.where(tuple_(on, at) >= tuple_(literal(a_on), literal(a_at, UTCDateTime())))
        elif mine < (a_rank, a_source):
            query = query.where(tuple_(on, at) > tuple_(literal(a_on), literal(a_at, UTCDateTime())))
        else:
            after = tuple_(literal(a_on), literal(a_at, UTCDateTime()), literal(a_row))
            query = query.where(tuple_(on, at, row) > after)
    return query.order_by(on, at, row).limit(reader.limit + 1)


def _decision_scope(reader: _Reader) -> ColumnElement[bool]:
    return sees(
        reader.principal, practitioner=Violation.practitioner_id, institution=Violation.institution_id
    )


def _ledger(reader: _Reader, kind: str, source: int) -> Iterable[Entry]:
    """Decisions and reversals: seen where the decision was made."""
    query = (
        select(LedgerEntry, Violation, Institution.code)
        .join(Violation, Violation.id == LedgerEntry.violation_id)
        .join(Institution, Institution.id == Violation.institution_id)
        .where(
            LedgerEntry.practitioner_id == reader.practitioner.id,
            LedgerEntry.kind == kind,
            _decision_scope(reader),
        )
    )
    query = _page(
        reader, query, LedgerEntry.effective_on, LedgerEntry.recorded_at, LedgerEntry.id, kind, source
    )
    for entry, violation, institution_code in reader.session.execute(query):
        common: dict[str, Any] = {
            "on": entry.effective_on,
            "at": entry.recorded_at,
            "by": entry.recorded_by,
            "source": source,
            "row": entry.id,
            "score_year": entry.score_year,
            "points": entry.points,
            "profile": entry.profile_id,
        }
        if kind == "decision":
            yield Entry(
                kind,
                detail=f"{violation.behaviour_code} ({violation.responsibility}): {entry.points} points",
                violation_id=violation.id,
                case_ref=violation.case_ref,
                institution_code=institution_code,
                behaviour_code=violation.behaviour_code,
                **common,
            )
        else:
            yield Entry(kind, detail=entry.reason or "", reverses_entry_id=entry.reverses_entry_id, **common)


def _decisions(reader: _Reader) -> Iterable[Entry]:
    return _ledger(reader, "decision", 1)


def _reversals(reader: _Reader) -> Iterable[Entry]:
    return _ledger(reader, "reversal", 2)


def _repair_scope(reader: _Reader) -> ColumnElement[bool]:
    return sees(
        reader.principal,
        practitioner=RepairApplication.practitioner_id,
        institution=RepairApplication.institution_id,
    )


def _repairs(reader: _Reader) -> Iterable[Entry]:
    """Approved repairs, with the credit the rules now give them (a later revocation counts)."""
    query = (
        select(LedgerEntry)
        .join(RepairApplication, RepairApplication.id == LedgerEntry.repair_id)
        .where(LedgerEntry.practitioner_id == reader.practitioner.id, _repair_scope(reader))
    )
    query = _page(
        reader, query, LedgerEntry.effective_on, LedgerEntry.recorded_at, LedgerEntry.id, "repair", 3
    )
    credits = {c.repair_id: c for c in reader.state.repairs}
    for entry in reader.session.scalars(query):
        credit = credits.get(entry.repair_id) if entry.repair_id is not None else None
        points = credit.points if credit else 0
        shortened = (
            f", term shortened by {credit.months_shortened} month(s)" if credit and credit.shortened else ""
        )
        yield Entry(
            "repair",
            on=entry.effective_on,
            at=entry.recorded_at,
            by=entry.recorded_by,
            source=3,
            row=entry.id,
            score_year=entry.score_year,
            points=-points,
            profile=entry.profile_id,
            repair_id=entry.repair_id,
            detail=f"{entry.activity}: {points} point(s) repaired{shortened}",
        )


def _measures(reader: _Reader, kind: str, source: int) -> Iterable[Entry]:
    """A task triggered, completed (or published) and ended (cancelled, or a notice withdrawn) are
    three entries of the file."""
    on, at = {
        "measure": (Measure.triggered_on, Measure.created_at),
        "measure_completed": (
            func.coalesce(Measure.published_on, Measure.completed_on),
            Measure.completed_at,
        ),
        "measure_cancelled": (local_date_of(Measure.cancelled_at), Measure.cancelled_at),
        "measure_withdrawn": (local_date_of(Measure.withdrawn_at), Measure.withdrawn_at),
    }[kind]
    query = select(Measure).where(
        Measure.practitioner_id == reader.practitioner.id,
        sees(reader.principal, practitioner=Measure.practitioner_id, institution=Measure.institution_id),
    )
    if kind != "measure":
        query = query.where(at.is_not(None))
    for m in reader.session.scalars(_page(reader, query, on, at, Measure.id, kind, source)):
        if kind == "measure":
            yield Entry(
                kind,
                m.triggered_on,
                m.created_at,
                "rules",
                f"{m.kind} triggered; now {m.state}",
                source,
                m.id,
                violation_id=m.violation_id,
                score_year=m.year,
                measure_id=m.id,
            )
        elif kind == "measure_completed":
            yield Entry(
                kind,
                m.published_on or m.completed_on,
                m.completed_at,
                m.completed_by,
                f"{m.kind} {m.state}: {m.note or ''}".rstrip(": "),
                source,
                m.id,
                violation_id=m.violation_id,
                measure_id=m.id,
            )
        else:
            ended = m.cancelled_at if kind == "measure_cancelled" else m.withdrawn_at
            what = "cancelled" if kind == "measure_cancelled" else "withdrawn from the public register"
            yield Entry(
                kind,
                local_date(ended),
                ended,
                "rules",
                f"{m.kind} {what}: its cause was revoked or amended",
                source,
                m.id,
                violation_id=m.violation_id,
                measure_id=m.id,
            )


def _measures_triggered(reader: _Reader) -> Iterable[Entry]:
    return _measures(reader, "measure", 4)


def _measures_completed(reader: _Reader) -> Iterable[Entry]:
    return _measures(reader, "measure_completed", 5)


def _measures_cancelled(reader: _Reader) -> Iterable[Entry]:
    return _measures(reader, "measure_cancelled", 6)


def _measures_withdrawn(reader: _Reader) -> Iterable[Entry]:
    return _measures(reader, "measure_withdrawn", 16)


def _appeals(reader: _Reader, kind: str, source: int) -> Iterable[Entry]:
    """An appeal filed and decided: seen by whoever may see its decision."""
    filed = kind == "appeal_filed"
    on, at = (Appeal.filed_on, Appeal.filed_at) if filed else (Appeal.decided_on, Appeal.decided_at)
    query = (
        select(Appeal)
        .join(Violation, Violation.id == Appeal.violation_id)
        .where(Appeal.practitioner_id == reader.practitioner.id, _decision_scope(reader), on.is_not(None))
    )
    for a in reader.session.scalars(_page(reader, query, on, at, Appeal.id, kind, source)):
        if filed:
            detail = f"appeal filed (deadline {a.deadline.isoformat()}): {a.reason}"
            yield Entry(kind, a.filed_on, a.filed_at, a.filed_by, detail, source, a.id, **_appeal_ids(a))
        else:
            points = f" to {a.outcome_points} points" if a.outcome_points else ""
            detail = f"appeal {a.status}{points}: {a.outcome_reason}"
            yield Entry(
                kind, a.decided_on, a.decided_at, a.decided_by, detail, source, a.id, **_appeal_ids(a)
            )


def _appeal_ids(appeal: Appeal) -> dict[str, Any]:
    return {"violation_id": appeal.violation_id, "appeal_id": appeal.id}


def _appeals_filed(reader: _Reader) -> Iterable[Entry]:
    return _appeals(reader, "appeal_filed", 7)


def _appeals_decided(reader: _Reader) -> Iterable[Entry]:
    return _appeals(reader, "appeal_decided", 8)


def _applications(reader: _Reader, step: str, source: int) -> Iterable[Entry]:
    """A repair application submitted, reviewed by the institution, reviewed by the agency."""
    app = RepairApplication
    on, at, kind = {
        "submitted": (local_date_of(app.submitted_at), app.submitted_at, "repair_submitted"),
        "institution": (
            local_date_of(app.institution_reviewed_at),
            app.institution_reviewed_at,
            "repair_reviewed",
        ),
        "agency": (app.agency_reviewed_on, app.agency_reviewed_at, "repair_reviewed"),
    }[step]
    query = select(app).where(
        app.practitioner_id == reader.practitioner.id, _repair_scope(reader), at.is_not(None)
    )
    for a in reader.session.scalars(_page(reader, query, on, at, app.id, kind, source)):
        if step == "submitted":
            when, by, detail = (
                a.submitted_at,
                a.submitted_by,
                f"{a.activity} completed {a.completed_on.isoformat()}",
            )
        elif step == "institution":
            when, by = a.institution_reviewed_at, a.institution_reviewed_by
            detail = f"institution review: {a.institution_comment or ''}".rstrip(": ")
        else:
            when, by = a.agency_reviewed_at, a.agency_reviewed_by
            detail = f"agency review, {a.status}: {a.agency_comment or ''}".rstrip(": ")
        on_day = a.agency_reviewed_on if step == "agency" else local_date(when)
        yield Entry(kind, on_day, when, by, detail, source, a.id, repair_id=a.id)


def _repairs_submitted(reader: _Reader) -> Iterable[Entry]:
    return _applications(reader, "submitted", 9)


def _repairs_reviewed_by_institution(reader: _Reader) -> Iterable[Entry]:
    return _applications(reader, "institution", 10)


def _repairs_reviewed_by_agency(reader: _Reader) -> Iterable[Entry]:
    return _applications(reader, "agency", 11)


def _registrations(reader: _Reader, kind: str, source: int) -> Iterable[Entry]:
    created = kind == "registration_created"
    on, at = (
        (Registration.start_date, Registration.created_at)
        if created
        else (Registration.end_date, Registration.ended_at)
    )
    query = (
        select(Registration, Institution.code)
        .join(Institution, Institution.id == Registration.institution_id)
        .where(
            Registration.practitioner_id == reader.practitioner.id,
            sees(
                reader.principal,
                practitioner=Registration.practitioner_id,
                institution=Registration.institution_id,
            ),
            on.is_not(None),
        )
    )
    for r, code in reader.session.execute(_page(reader, query, on, at, Registration.id, kind, source)):
        if created:
            yield Entry(
                kind,
                r.start_date,
                r.created_at,
                r.created_by,
                f"registered at {code}",
                source,
                r.id,
                institution_code=code,
            )
        else:
            yield Entry(
                kind,
                r.end_date,
                r.ended_at,
                r.ended_by,
                r.end_reason or "",
                source,
                r.id,
                institution_code=code,
            )


def _registrations_created(reader: _Reader) -> Iterable[Entry]:
    return _registrations(reader, "registration_created", 12)


def _registrations_ended(reader: _Reader) -> Iterable[Entry]:
    return _registrations(reader, "registration_ended", 13)


# -- the derived kinds: from the snapshot, few per person -------------------------------------------


def _sanctions(reader: _Reader) -> Iterable[Entry]:
    """Suspensions and terminations are national; the decision behind one only to its readers."""
    sanctions: list[rules.Suspension | rules.Termination] = [
        *reader.state.suspensions,
        *reader.state.terminations,
    ]
    readable = readable_violations(reader.session, reader.principal, [s.violation_id for s in sanctions])
    for n, s in enumerate(sanctions):
        end = s.end if isinstance(s, rules.Suspension) else s.barred_until
        kind = "suspension" if isinstance(s, rules.Suspension) else "termination"
        yield Entry(
            "sanction",
            s.start,
            None,
            "rules",
            f"{kind} from {s.start.isoformat()} to {end.isoformat()} ({s.basis})",
            14,
            n,
            violation_id=s.violation_id if s.violation_id in readable else None,
            score_year=s.year,
        )


def _ended_by_termination(reader: _Reader) -> Iterable[Entry]:
    """Registrations a termination ended (rule 17), at the institutions the reader may see."""
    spans = [
        s
        for s in reader.state.registrations
        if s.ended_by == "termination" and s.end is not None and s.termination_violation_id is not None
    ]
    if not spans:
        return
    institutions = dict(
        reader.session.execute(
            select(Institution.code, Institution.id).where(
                Institution.code.in_({s.institution_code for s in spans})
            )
        ).all()
    )
    violation_ids = [s.termination_violation_id for s in spans if s.termination_violation_id is not None]
    readable = readable_violations(reader.session, reader.principal, violation_ids)
    for s in spans:
        if s.end is not None and sees(
            reader.principal,
            practitioner=reader.practitioner.id,
            institution=institutions.get(s.institution_code),
        ):
            yield Entry(
                "registration_ended",
                s.end,
                None,
                "rules",
                "ended by termination (docs/rules.md rule 17)",
                15,
                s.registration_id,
                institution_code=s.institution_code,
                violation_id=s.termination_violation_id if s.termination_violation_id in readable else None,
            )


def _after_cursor(source: Callable[[_Reader], Iterable[Entry]]) -> Callable[[_Reader], Iterable[Entry]]:
    def filtered(reader: _Reader) -> Iterable[Entry]:
        return [e for e in source(reader) if reader.after is None or e.key > reader.after]

    return filtered


SOURCES: tuple[Callable[[_Reader], Iterable[Entry]], ...] = (
    _decisions,
    _reversals,
    _repairs,
    _measures_triggered,
    _measures_completed,
    _measures_cancelled,
    _measures_withdrawn,
    _appeals_filed,
    _appeals_decided,
    _repairs_submitted,
    _repairs_reviewed_by_institution,
    _repairs_reviewed_by_agency,
    _registrations_created,
    _registrations_ended,
    _after_cursor(_sanctions),
    _after_cursor(_ended_by_termination),
)


def _name_actors(session: Session, principal: Principal, entries: list[Entry]) -> list[Entry]:
    """`by` as the principal may read it (access.actor_label): key names in their scope, roles outside."""
    if principal.is_national:
        return entries
    keys = queries.keys_by_id(session, {k for e in entries if (k := key_id_of(e.by)) is not None})
    named = []
    for entry in entries:
        key_id = key_id_of(entry.by)
        key = keys.get(key_id) if key_id is not None else None
        actor = Actor(key.id, key.role, key.institution_id, key.practitioner_id) if key else None
        named.append(replace(entry, by=actor_label(principal, entry.by, actor)))
    return named
