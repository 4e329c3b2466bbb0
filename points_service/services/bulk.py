"""Bulk data: CSV imports of institutions, practitioners and registrations, and demo data.

Every row of a file is validated before anything is written; a file with bad rows imports nothing
unless the caller skips them. A file is imported in the caller's one transaction. Rows are written
with COPY on PostgreSQL (psycopg 3) and executemany on SQLite, never as ORM objects; derived
snapshots are computed with `rules.derive_state` exactly as `services.state.recompute_state` does.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import hmac
import json
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Table, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..logs import redact
from ..persistence import pii
from ..persistence.engine import is_postgresql
from ..persistence.models import (
    AuditEvent,
    Institution,
    LedgerEntry,
    Measure,
    Practitioner,
    PractitionerState,
    Registration,
    Violation,
)
from ..persistence.sql import in_values
from ..rules import standing as rules
from ..rules.calendar import local_date, score_year
from ..rules.policy import CATEGORIES, INSTITUTION_KINDS, PolicySet
from . import events
from .audit import digest
from .violations import RecordViolation

KINDS = ("institutions", "practitioners", "registrations")
# (required, optional) columns of each kind of file, in the order the checks take them
COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "institutions": (("code", "name", "kind", "region_code"), ()),
    "practitioners": (("code", "name", "id_number", "category"), ()),
    "registrations": (("practitioner_code", "institution_code", "start_date"), ("end_date",)),
}

# the same rules as the API's schemas (api/schemas/registry.py)
CODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
REGION_RE = re.compile(r"[0-9]{6}")
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
CODE_HELP = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
_CATEGORIES = frozenset(CATEGORIES)
_KINDS = frozenset(INSTITUTION_KINDS)

EMPTY_STATE_JSON = json.dumps(rules.state_to_mapping(rules.PersonState()))
# PostgreSQL takes ids this many at a time in = ANY(array); SQLite binds at most 999 variables
_PG_CHUNK = 50_000
_SQLITE_CHUNK = 900
_COPY_FLUSH = 4000


# -- reports --------------------------------------------------------------------------------------


class ImportRefused(Exception):
    """The file itself cannot be read (no header, missing columns): nothing can be imported."""

    def __init__(self, line: int, message: str):
        message = redact(message)
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


class _Errors:
    """Problems by physical line number; a line may have several. A message that quotes a value
    from the file never carries a national ID in clear, whatever column it was found in."""

    def __init__(self) -> None:
        self.by_line: dict[int, list[str]] = {}

    def add(self, line: int, message: str) -> None:
        self.by_line.setdefault(line, []).append(redact(message))

    def __contains__(self, line: int) -> bool:
        return line in self.by_line

    def sorted(self) -> list[tuple[int, str]]:
        return [(line, "; ".join(messages)) for line, messages in sorted(self.by_line.items())]


@dataclass
class ImportReport:
    kind: str
    file: str
    rows: int = 0  # rows imported (with dry_run: rows that would be)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, message), line order
    refused: bool = False  # nothing was imported
    existing: int = 0  # rows equal to what is stored, skipped (skip_existing)
    undecodable: int = 0  # lines not in the file's encoding
    dry_run: bool = False
    seconds: float = 0.0

    @property
    def skipped(self) -> int:
        return 0 if self.refused else len(self.errors)


# (phase, bytes read, lines read) of a pass over the file; called every few thousand lines
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ImportOptions:
    skip_bad: bool = False  # import the good rows, report the bad ones
    skip_existing: bool = False  # a row equal to what is stored is skipped, not an error
    dry_run: bool = False  # check everything, write nothing
    encoding: str = "utf-8"
    progress: Progress | None = None


# -- reading CSV ---------------------------------------------------------------------------------

_PROGRESS_EVERY = 4096  # lines


def encoding_problem(encoding: str) -> str | None:
    """Why a file cannot be read in `encoding`, or None. The file is split into lines as bytes, so
    the encoding must spell newline, comma and quote as ASCII does (UTF-8, GBK and GB18030 do)."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return f"unknown encoding {encoding!r} (e.g. utf-8, gbk, gb18030)"
    if any(c.encode(name) != c.encode("ascii") for c in '\n\r,"'):
        return f"{encoding} cannot be read line by line; convert the file to UTF-8"
    return None


def _encoding_name(encoding: str) -> str:
    name = codecs.lookup(encoding).name
    return "UTF-8" if name == "utf-8" else name.upper()


@dataclass
class _Source:
    """A CSV file read line by line, never whole; lines that cannot be decoded or hold a NUL are
    remembered (by physical line number) so that their row becomes a bad row, not a crash."""

    path: Path
    encoding: str = "utf-8"
    progress: Progress | None = None
    bad_lines: dict[int, str] = field(default_factory=dict)

    def lines(self, phase: str) -> Iterator[str]:
        encoding, bad, progress = self.encoding, self.bad_lines, self.progress
        undecodable = f"not valid {_encoding_name(encoding)}"
        done = number = 0
        with self.path.open("rb") as raw:
            for number, line in enumerate(raw, start=1):
                try:
                    text = line.decode(encoding)
                except UnicodeDecodeError:
                    bad[number] = undecodable
                    text = line.decode(encoding, "replace")
                if "\x00" in text:
                    bad[number] = "contains a NUL character, which no field may hold"
                if number == 1:
                    text = text.removeprefix("\ufeff")
                if progress is not None:
                    done += len(line)
                    if number % _PROGRESS_EVERY == 0:
                        progress(phase, done, number)
                yield text
        if progress is not None:
            progress(phase, done, number)

    def count_lines(self) -> int:
        """At least as many as the data rows, counted without holding the file."""
        count = 1
        with self.path.open("rb") as raw:
            for block in iter(lambda: raw.read(1 << 20), b""):
                count += block.count(b"\n")
        return count

    def undecodable(self) -> int:
        return sum(1 for reason in self.bad_lines.values() if reason.startswith("not valid"))

    def records(
        self, kind: str, errors: _Errors, *, phase: str = "checking"
    ) -> Iterator[tuple[int, list[str]]]:
        """(physical line number, stripped fields in COLUMNS order) per data row; the header is line 1.

        The header is read before this returns, so a file that cannot be imported fails at once.
        """
        required, optional = COLUMNS[kind]
        self.bad_lines.clear()
        reader = csv.reader(self.lines(phase))
        try:
            header = next(reader)
        except StopIteration:
            raise ImportRefused(1, f"the file is empty: expected a header row {','.join(required)}") from None
        except csv.Error as exc:
            raise ImportRefused(1, f"unreadable CSV: {exc}") from None
        if 1 in self.bad_lines:
            reason = self.bad_lines[1]
            hint = "; if the file is GBK, pass --encoding gbk" if reason.endswith("UTF-8") else ""
            raise ImportRefused(1, f"the header is {reason}{hint}")
        expected = ",".join(required + tuple(f"[{o}]" for o in optional))
        names = [h.strip().lower() for h in header]
        if not set(names) & set(required + optional):
            # most likely a first data row: its values (a national ID, a name) are not repeated here
            raise ImportRefused(1, f"the first line is not a header; the file must start with {expected}")
        missing = [c for c in required if c not in names]
        unknown = [n for n in names if n not in required + optional]
        repeated = sorted({n for n in names if names.count(n) > 1})
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown column(s) {', '.join(repr(n[:40]) for n in unknown)}")
        if repeated:
            problems.append(f"repeated column(s) {', '.join(repeated)}")
        if problems:
            raise ImportRefused(1, "; ".join(problems) + f" (expected {expected})")
        positions = [names.index(c) for c in required] + [
            names.index(c) if c in names else -1 for c in optional
        ]
        width = len(names)
        in_order = positions == list(range(width))
        bad = self.bad_lines

        def rows() -> Iterator[tuple[int, list[str]]]:
            last = reader.line_num
            try:
                for row in reader:
                    line, last = last + 1, reader.line_num
                    if bad and any(n in bad for n in range(line, last + 1)):
                        errors.add(line, next(bad[n] for n in range(line, last + 1) if n in bad))
                        continue
                    if len(row) != width:
                        if not row or (len(row) == 1 and not row[0].strip()):
                            continue  # a blank line
                        errors.add(line, f"expected {width} fields, got {len(row)}")
                        continue
                    if in_order:
                        yield line, [v.strip() for v in row]
                    else:
                        yield line, [row[p].strip() if p >= 0 else "" for p in positions]
            except csv.Error as exc:
                raise ImportRefused(reader.line_num, f"unreadable CSV: {exc}") from None

        return rows()


# -- database helpers shared by the importer and the demo --------------------------------------


def _raw(session: Session) -> Any:
    """The psycopg connection under the session's transaction (PostgreSQL only)."""
    return session.connection().connection.driver_connection


def _chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _select_in(session: Session, query: Any, column: Any, values: Iterable[Any]) -> Iterator[Any]:
    """Rows of `query` filtered by `column IN values`, in chunks the database accepts."""
    values = list(values)
    size = _PG_CHUNK if is_postgresql(session) else _SQLITE_CHUNK
    for chunk in _chunks(values, size):
        yield from session.execute(query.where(in_values(session, column, chunk)))


def reserve_ids(session: Session, table: Table, count: int) -> list[int]:
    """Ids for `count` new rows, known before the rows are written (snapshots refer to them)."""
    if count <= 0:
        return []
    if is_postgresql(session):
        with _raw(session).cursor() as cur:
            cur.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table.name,))
            sequence = cur.fetchone()[0]
            cur.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)", (sequence, count))
            return [row[0] for row in cur]
    # SQLite: the write transaction (BEGIN IMMEDIATE) holds the database lock, so max(id) is ours
    start = session.execute(text(f"SELECT coalesce(max(id), 0) FROM {table.name}")).scalar_one() + 1
    return list(range(start, start + count))


def _sqlite_value(value: Any) -> Any:
    # what the column types store on SQLite (persistence/base.py: instants as naive UTC)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def insert_rows(session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write plain rows: COPY on PostgreSQL, executemany on SQLite. JSON values come as JSON text."""
    if is_postgresql(session):
        count = 0
        with (
            _raw(session).cursor() as cur,
            cur.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
                count += 1
        return count
    values = [tuple(_sqlite_value(v) for v in row) for row in rows]
    if values:
        placeholders = ", ".join("?" for _ in columns)
        session.connection().exec_driver_sql(
            f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({placeholders})", values
        )
    return len(values)


_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]").search


def _copy_text(value: str) -> str:
    """A value in COPY's text format (codes and enums never need this; names might)."""
    if _NEEDS_ESCAPE(value) is None:
        return value
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def national_id_index(keys: pii.PiiKeys) -> Callable[[str], str]:
    """`pii.blind_index` for numbers already normalised: the same HMAC, without re-validating."""
    key = keys.index_key

    def index(normalised: str) -> str:
        return hmac.new(key, normalised.encode("ascii"), hashlib.sha256).hexdigest()

    return index


@dataclass(frozen=True)
class NewPractitioner:
    code: str
    name: str
    category: str
    national_id: str  # normalised (pii.normalise_national_id)
    index: str  # pii.blind_index of it


def national_id_cipher(keys: pii.PiiKeys) -> Callable[[str, str], bytes]:
    """`pii.encrypt_national_id` for numbers already normalised in this pass: the same `pii.seal`
    (same blob layout, the code as associated data) without normalising the number again."""
    seal = pii.seal

    def cipher(normalised: str, code: str) -> bytes:
        return seal(keys, normalised.encode("ascii"), associated_data=code.encode("utf-8"))

    return cipher


def write_practitioners(
    session: Session,
    people: Iterable[tuple[int, NewPractitioner]],
    *,
    keys: pii.PiiKeys,
    now: dt.datetime,
) -> int:
    """Insert (id, practitioner) rows with the national ID encrypted, indexed and masked.

    `people` may be a generator (the importer validates as it goes); on PostgreSQL the COPY text
    is built in one tight loop, so the server ingests while the next rows are encrypted.
    """
    cipher, mask = national_id_cipher(keys), pii.mask_national_id
    if not is_postgresql(session):
        count = 0
        batch: list[tuple[Any, ...]] = []
        for pid, p in people:
            batch.append(
                (
                    pid,
                    p.code,
                    p.name,
                    p.category,
                    cipher(p.national_id, p.code),
                    p.index,
                    mask(p.national_id),
                    now,
                )
            )
            if len(batch) >= _COPY_FLUSH:
                count += insert_rows(session, Practitioner.__table__, _PRACTITIONER_COLUMNS, batch)
                batch.clear()
        return count + insert_rows(session, Practitioner.__table__, _PRACTITIONER_COLUMNS, batch)
    stamp = now.isoformat()
    count = 0
    with (
        _raw(session).cursor() as cur,
        cur.copy(f"COPY practitioner ({', '.join(_PRACTITIONER_COLUMNS)}) FROM STDIN") as copy,
    ):
        buffer: list[str] = []
        for pid, p in people:
            blob = cipher(p.national_id, p.code).hex()
            buffer.append(
                f"{pid}\t{p.code}\t{_copy_text(p.name)}\t{p.category}\t\\\\x{blob}\t"
                f"{p.index}\t{mask(p.national_id)}\t{stamp}\n"
            )
            if len(buffer) >= _COPY_FLUSH:
                copy.write("".join(buffer))
                count += len(buffer)
                buffer.clear()
        copy.write("".join(buffer))
        count += len(buffer)
    return count


def insert_empty_snapshots(
    session: Session, ids: Sequence[int], codes: Sequence[str], *, now: dt.datetime
) -> None:
    """The snapshot of people with no ledger and no registration (what recompute_state stores)."""
    if not ids:
        return
    if is_postgresql(session):
        with _raw(session).cursor() as cur:
            cur.execute(
                "INSERT INTO practitioner_state (practitioner_id, practitioner_code, ledger_version, state, "
                "updated_at, announced_status, next_transition_on) "
                "SELECT t.id, t.code, 0, %s::jsonb, %s, 'not_registered', NULL "
                "FROM unnest(%s::bigint[], %s::varchar[]) AS t(id, code)",
                (EMPTY_STATE_JSON, now, list(ids), list(codes)),
            )
        return
    insert_snapshots(
        session,
        (
            (pid, code, 0, EMPTY_STATE_JSON, "not_registered", None)
            for pid, code in zip(ids, codes, strict=True)
        ),
        now=now,
    )


_PRACTITIONER_COLUMNS = (
    "id",
    "code",
    "name",
    "category",
    "national_id_cipher",
    "national_id_index",
    "national_id_masked",
    "created_at",
)
_SNAPSHOT_COLUMNS = (
    "practitioner_id",
    "practitioner_code",
    "ledger_version",
    "state",
    "updated_at",
    "announced_status",
    "next_transition_on",
)

# (practitioner_id, practitioner_code, ledger_version, state JSON text, announced_status, next_transition_on)
SnapshotRow = tuple[int, str, int, str, str, dt.date | None]


def insert_snapshots(session: Session, rows: Iterable[SnapshotRow], *, now: dt.datetime) -> int:
    return insert_rows(
        session,
        PractitionerState.__table__,
        _SNAPSHOT_COLUMNS,
        (
            (pid, code, version, state, now, status, next_on)
            for pid, code, version, state, status, next_on in rows
        ),
    )


def update_snapshots(session: Session, rows: Sequence[SnapshotRow], *, now: dt.datetime) -> int:
    """Rewrite existing snapshots: COPY into a temporary table + one UPDATE ... FROM on PostgreSQL."""
    if not rows:
        return 0
    if not is_postgresql(session):
        session.connection().exec_driver_sql(
            "UPDATE practitioner_state SET ledger_version = ?, state = ?, updated_at = ?, "
            "announced_status = ?, next_transition_on = ? WHERE practitioner_id = ?",
            [
                (version, state, _sqlite_value(now), status, _sqlite_value(next_on), pid)
                for pid, _, version, state, status, next_on in rows
            ],
        )
        return len(rows)
    with _raw(session).cursor() as cur:
        cur.execute(
            "CREATE TEMPORARY TABLE bulk_snapshot (practitioner_id bigint, ledger_version integer, "
            "state jsonb, announced_status varchar(16), next_transition_on date) ON COMMIT DROP"
        )
        with cur.copy("COPY bulk_snapshot FROM STDIN") as copy:
            for pid, _, version, state, status, next_on in rows:
                copy.write_row((pid, version, state, status, next_on))
        cur.execute("ANALYZE bulk_snapshot")
        cur.execute(
            "UPDATE practitioner_state s SET ledger_version = b.ledger_version, state = b.state, "
            "updated_at = %s, announced_status = b.announced_status, "
            "next_transition_on = b.next_transition_on "
            "FROM bulk_snapshot b WHERE s.practitioner_id = b.practitioner_id",
            (now,),
        )
        count = cur.rowcount
        cur.execute("DROP TABLE bulk_snapshot")
    return count


def snapshot_values(state: rules.PersonState, today: dt.date) -> tuple[str, str, dt.date | None]:
    """What `services.state.recompute_state` stores: the mapping, today's status, the next change."""
    return (
        json.dumps(rules.state_to_mapping(state)),
        rules.eligibility_on(state, today).status,
        rules.next_change_after(state, today),
    )


def _audit(
    session: Session, *, actor: str, action: str, object_type: str, object_id: str, detail: dict, now
) -> None:
    session.add(
        AuditEvent(
            at=now,
            actor=actor[:200],
            role="system",
            action=action,
            object_type=object_type,
            object_id=object_id[:100],
            request_id=None,
            digest=digest(detail),
            detail=detail,
        )
    )
    session.flush()


# -- people as the rules see them -----------------------------------------------------------------


@dataclass
class _Person:
    """One practitioner's ledger and registrations as stored, for derive_state."""

    code: str
    decisions: list[rules.Decision] = field(default_factory=list)
    reversals: list[rules.Reversal] = field(default_factory=list)
    repairs: list[rules.Repair] = field(default_factory=list)
    registrations: list[rules.Registration] = field(default_factory=list)
    ledger_size: int = 0
    announced: str | None = None
    has_snapshot: bool = False

    def derive(self, policies: PolicySet) -> rules.PersonState:
        return rules.derive_state(
            decisions=self.decisions,
            reversals=self.reversals,
            repairs=self.repairs,
            registrations=self.registrations,
            policies=policies.profiles,
        )


def _load_people(session: Session, codes_by_id: Mapping[int, str]) -> dict[int, _Person]:
    """Ledgers, registrations and announced statuses of many people at once (chunked queries)."""
    people = {pid: _Person(code) for pid, code in codes_by_id.items()}
    ids = list(people)
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
    for pid, eid, kind, on, points, vid, reverses, repair_id, activity, profile in _select_in(
        session, ledger, LedgerEntry.practitioner_id, ids
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
    for pid, rid, institution_code, start, end in _select_in(
        session, registrations, Registration.practitioner_id, ids
    ):
        people[pid].registrations.append(rules.Registration(rid, institution_code, start, end))
    snapshots = select(PractitionerState.practitioner_id, PractitionerState.announced_status)
    for pid, announced in _select_in(session, snapshots, PractitionerState.practitioner_id, ids):
        people[pid].announced = announced
        people[pid].has_snapshot = True
    return people


# -- the importer ---------------------------------------------------------------------------------


def import_csv(
    session: Session,
    kind: str,
    path: Path,
    *,
    keys: pii.PiiKeys,
    policies: PolicySet,
    now: dt.datetime,
    options: ImportOptions = ImportOptions(),
) -> ImportReport:
    """Validate every row of the file, then import it in the session's transaction.

    With bad rows and no `skip_bad` nothing is written (`refused`); with `skip_bad` the good rows
    are written and the bad ones reported. With `skip_existing` a row equal to what is stored is
    counted in `existing` and skipped, and a row that differs from it is a bad row. With `dry_run`
    nothing is written at all. Raises ImportRefused when the file cannot be read.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    started = time.perf_counter()
    report = ImportReport(kind=kind, file=path.name, dry_run=options.dry_run)
    errors = _Errors()
    source = _Source(path, options.encoding, options.progress)
    actor = f"import:{path.name}"
    if kind == "practitioners":
        imported = _import_practitioners(session, source, errors, report, keys=keys, now=now, options=options)
    else:
        rows = source.records(kind, errors)
        if kind == "institutions":
            checked = _check_institutions(session, rows, errors, skip_existing=options.skip_existing)
        else:
            checked = _check_registrations(
                session, rows, errors, policies=policies, skip_existing=options.skip_existing
            )
        report.existing = len(checked.existing)
        good = [row for line, row in checked.rows if line not in errors]
        imported = None if errors.by_line and not options.skip_bad else len(good)
        if imported is not None and not options.dry_run:
            if kind == "institutions":
                _write_institutions(session, good, now=now)
            else:
                _write_registrations(session, checked, good, actor=actor, policies=policies, now=now)
    report.errors = errors.sorted()
    report.undecodable = source.undecodable()
    report.refused = imported is None
    report.rows = imported or 0
    if imported is not None and not options.dry_run:
        _audit(
            session,
            actor=actor,
            action=f"import.{kind}",
            object_type="import",
            object_id=path.name,
            detail={
                "file": path.name,
                "rows": report.rows,
                "skipped": report.skipped,
                "existing": report.existing,
            },
            now=now,
        )
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class _Checked:
    rows: list[tuple[int, Any]]  # (line, validated row)
    people: dict[int, _Person] = field(default_factory=dict)
    institutions: dict[str, int] = field(default_factory=dict)
    existing: set[int] = field(default_factory=set)  # lines equal to what is stored (skip_existing)


def _check_code(errors: _Errors, line: int, what: str, value: str) -> bool:
    if CODE_RE.fullmatch(value) is None:
        errors.add(line, f"{what} {value!r} is not a valid code ({CODE_HELP})")
        return False
    return True


def _check_name(errors: _Errors, line: int, value: str) -> None:
    if not value:
        errors.add(line, "name is required")
    elif len(value) > 200:
        errors.add(line, f"name is longer than 200 characters ({len(value)})")


def _differences(stored: Sequence[Any], given: Sequence[Any], names: Sequence[str]) -> str:
    return ", ".join(name for name, a, b in zip(names, stored, given, strict=True) if a != b)


def _check_institutions(
    session: Session, rows: Iterator[tuple[int, list[str]]], errors: _Errors, *, skip_existing: bool = False
) -> _Checked:
    checked: list[tuple[int, Any]] = []
    seen: dict[str, int] = {}
    for line, (code, name, kind, region) in rows:
        if _check_code(errors, line, "code", code):
            if code in seen:
                errors.add(line, f"duplicate code {code} (also on line {seen[code]})")
            else:
                seen[code] = line
        _check_name(errors, line, name)
        if kind not in _KINDS:
            errors.add(line, f"unknown kind {kind!r} (one of {', '.join(INSTITUTION_KINDS)})")
        if REGION_RE.fullmatch(region) is None:
            errors.add(line, f"region_code {region!r} must be 6 digits (行政区划代码, e.g. 130100)")
        checked.append((line, (code, name, kind, region)))
    stored = select(Institution.code, Institution.name, Institution.kind, Institution.region_code)
    given = {line: row for line, row in checked}
    existing = set()
    for code, *values in _select_in(session, stored, Institution.code, list(seen)):
        line = seen[code]
        differs = _differences(values, given[line][1:], ("name", "kind", "region_code"))
        if skip_existing and not differs:
            existing.add(line)
        elif skip_existing:
            errors.add(line, f"institution {code} exists with another {differs}")
        else:
            errors.add(line, f"institution {code} already exists")
    return _Checked([(line, row) for line, row in checked if line not in existing], existing=existing)


def _write_institutions(session: Session, rows: Sequence[tuple[str, str, str, str]], *, now) -> list[int]:
    ids = reserve_ids(session, Institution.__table__, len(rows))
    insert_rows(
        session,
        Institution.__table__,
        ("id", "code", "name", "kind", "region_code", "created_at"),
        (
            (iid, code, name, kind, region, now)
            for iid, (code, name, kind, region) in zip(ids, rows, strict=True)
        ),
    )
    return ids


class _PractitionerRows:
    """One validating pass over a practitioners file: one normalisation and one HMAC per row.

    `good()` yields the rows to write with their new ids while it goes, so that the database
    ingests while the next rows are checked and encrypted. It stops yielding at the first bad row
    unless bad rows are to be skipped, and never yields a line in `skip_lines`.
    """

    def __init__(
        self, keys: pii.PiiKeys, errors: _Errors, *, write: bool, skip_bad: bool, skip_lines=frozenset()
    ):
        self.keys = keys
        self.index_of = national_id_index(keys)
        self.errors = errors
        self.write = write
        self.skip_bad = skip_bad
        self.skip_lines = skip_lines
        self.seen_codes: dict[str, int] = {}
        self.seen_ids: dict[str, int] = {}
        self.rows: dict[int, tuple[str, str, str]] = {}  # line -> (name, category, number), when kept
        self.checked: list[int] = []  # lines whose national ID was valid and new in the file
        self.ids: list[int] = []
        self.codes: list[str] = []

    def good(
        self, rows: Iterator[tuple[int, list[str]]], ids: Iterator[int], *, keep: bool = False
    ) -> Iterator[tuple[int, NewPractitioner]]:
        errors, add = self.errors, self.errors.add
        seen_codes, seen_ids, skip_lines, kept = self.seen_codes, self.seen_ids, self.skip_lines, self.rows
        checked = self.checked
        normalise, invalid, index_of = pii.normalise_national_id, pii.InvalidNationalId, self.index_of
        code_ok = CODE_RE.fullmatch
        for line, (code, name, id_number, category) in rows:
            bad = False
            if code_ok(code) is None:
                add(line, f"code {code!r} is not a valid code ({CODE_HELP})")
                bad = True
            elif code in seen_codes:
                add(line, f"duplicate code {code} (also on line {seen_codes[code]})")
                bad = True
            else:
                seen_codes[code] = line
            if not name or len(name) > 200:
                _check_name(errors, line, name)
                bad = True
            if category not in _CATEGORIES:
                add(line, f"unknown category {category!r} (one of {', '.join(CATEGORIES)})")
                bad = True
            try:
                national_id = normalise(id_number)
            except invalid as exc:  # the message names the check, never the number
                add(line, f"id_number: {exc}")
                continue
            index = index_of(national_id)
            first = seen_ids.setdefault(index, line)
            if first != line:
                add(line, f"id_number is the same national ID as on line {first}")
                continue
            checked.append(line)
            if keep:
                kept[line] = (name, category, national_id)
            if bad or not self.write or line in skip_lines or (errors.by_line and not self.skip_bad):
                continue
            pid = next(ids)
            self.ids.append(pid)
            self.codes.append(code)
            yield pid, NewPractitioner(code, name, category, national_id, index)

    def database_conflicts(self, session: Session, *, skip_existing: bool = False) -> set[int]:
        """Codes and national IDs the database already holds are bad rows; with `skip_existing`
        a row equal to the stored person is not, and its line is returned among the existing.

        While the index key is rotated a stored national ID may be indexed under either key, so
        the previous key's indexes are looked up too.
        """
        seen_codes, seen_ids = self.seen_codes, self.seen_ids
        existing: set[int] = set()
        stored = select(
            Practitioner.code, Practitioner.name, Practitioner.category, Practitioner.national_id_index
        )
        for code, name, category, index in _select_in(session, stored, Practitioner.code, list(seen_codes)):
            line = seen_codes[code]
            given = self.rows.get(line)
            if not skip_existing or given is None:
                self.errors.add(line, f"practitioner {code} already exists")
                continue
            same_number = index in pii.blind_indexes(self.keys, given[2])
            differs = _differences((name, category, same_number), (given[0], given[1], True), _PERSON_FIELDS)
            if differs:
                self.errors.add(line, f"practitioner {code} exists with another {differs}")
            else:
                existing.add(line)
        by_index = dict(seen_ids)
        if self.keys.previous_index_key is not None:
            by_index |= {pii.blind_indexes(self.keys, row[2])[-1]: line for line, row in self.rows.items()}
        query = select(Practitioner.code, Practitioner.national_id_index)
        for code, index in _select_in(session, query, Practitioner.national_id_index, list(by_index)):
            line = by_index[index]
            if line not in existing and seen_codes.get(code) != line:
                self.errors.add(line, "id_number is already held by another practitioner")
        return existing


_PERSON_FIELDS = ("name", "category", "id_number")
_CONFLICTS = (IntegrityError, psycopg.errors.IntegrityError)


def _import_practitioners(
    session: Session,
    source: _Source,
    errors: _Errors,
    report: ImportReport,
    *,
    keys: pii.PiiKeys,
    now: dt.datetime,
    options: ImportOptions,
) -> int | None:
    """Import a practitioners file; the number imported, or None when refused.

    The usual case is one pass: rows are checked, encrypted and copied as they are read, inside a
    savepoint, and the unique indexes find codes and national IDs the database already holds. A
    refused file is rolled back to the savepoint. If the database does hold some (a unique
    violation), the savepoint is rolled back and the careful way is taken: check every row first,
    ask the database about every code and national ID, then write the good rows. A dry run, and
    an import while the index key is rotated (the unique index cannot see a number indexed under
    the previous key), take the careful way from the start.
    """
    skip_bad = options.skip_bad
    capacity = source.count_lines()
    if not options.dry_run and keys.previous_index_key is None:
        rows = source.records("practitioners", errors, phase="importing")
        ids = iter(reserve_ids(session, Practitioner.__table__, capacity))
        check = _PractitionerRows(keys, errors, write=True, skip_bad=skip_bad)
        savepoint = session.begin_nested()
        try:
            write_practitioners(session, check.good(rows, ids), keys=keys, now=now)
        except _CONFLICTS:
            savepoint.rollback()
        else:
            if errors.by_line and not skip_bad:
                savepoint.rollback()
                check.database_conflicts(session)
                return None
            insert_empty_snapshots(session, check.ids, check.codes, now=now)
            savepoint.commit()
            return len(check.ids)
        errors.by_line.clear()
    check = _PractitionerRows(keys, errors, write=False, skip_bad=skip_bad)
    # the rows themselves are kept only when the database's must be compared with them
    keep = options.skip_existing or keys.previous_index_key is not None
    for _ in check.good(source.records("practitioners", errors), iter(()), keep=keep):
        pass
    existing = check.database_conflicts(session, skip_existing=options.skip_existing)
    report.existing = len(existing)
    if errors.by_line and not skip_bad:
        return None
    if options.dry_run:
        return sum(1 for line in check.checked if line not in errors and line not in existing)
    check = _PractitionerRows(
        keys, _Errors(), write=True, skip_bad=True, skip_lines=frozenset(errors.by_line) | existing
    )
    ids = iter(reserve_ids(session, Practitioner.__table__, capacity))
    rows = source.records("practitioners", check.errors, phase="importing")
    write_practitioners(session, check.good(rows, ids), keys=keys, now=now)
    insert_empty_snapshots(session, check.ids, check.codes, now=now)
    return len(check.ids)


def _parse_date(errors: _Errors, line: int, what: str, value: str) -> dt.date | None:
    if DATE_RE.fullmatch(value) is None:
        errors.add(line, f"{what} {value!r} is not an ISO date (YYYY-MM-DD)")
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        errors.add(line, f"{what} {value!r} is not a valid date")
        return None


def _overlaps(a_start: dt.date, a_end: dt.date | None, b_start: dt.date, b_end: dt.date | None) -> bool:
    return (b_end is None or a_start < b_end) and (a_end is None or b_start < a_end)


def _check_registrations(
    session: Session,
    rows: Iterator[tuple[int, list[str]]],
    errors: _Errors,
    *,
    policies: PolicySet,
    skip_existing: bool = False,
) -> _Checked:
    parsed: list[tuple[int, str, str, dt.date, dt.date | None]] = []
    for line, (person, institution, start_text, end_text) in rows:
        ok = _check_code(errors, line, "practitioner_code", person)
        ok = _check_code(errors, line, "institution_code", institution) and ok
        start = _parse_date(errors, line, "start_date", start_text)
        end = _parse_date(errors, line, "end_date", end_text) if end_text else None
        if start is not None and end is not None and end <= start:
            errors.add(line, f"end_date {end.isoformat()} must be after start_date {start.isoformat()}")
            ok = False
        if ok and start is not None and (end is not None or not end_text):
            parsed.append((line, person, institution, start, end))
    # referenced codes: registrations refer to practitioners and institutions already in the database
    people_ids = {
        code: pid
        for pid, code in _select_in(
            session, select(Practitioner.id, Practitioner.code), Practitioner.code, {r[1] for r in parsed}
        )
    }
    institutions = {
        code: iid
        for iid, code in _select_in(
            session, select(Institution.id, Institution.code), Institution.code, {r[2] for r in parsed}
        )
    }
    people = _load_people(session, {pid: code for code, pid in people_ids.items()})
    states = {pid: p.derive(policies) for pid, p in people.items() if p.ledger_size}
    # what each person holds per institution: stored spans (a termination ends them), then this file's
    held: dict[tuple[int, str], list[tuple[dt.date, dt.date | None, int | None]]] = defaultdict(list)
    for pid, person in people.items():
        spans = states[pid].registrations if pid in states else person.registrations
        for span in spans:
            if not (span.end is not None and span.end <= span.start):
                held[(pid, span.institution_code)].append((span.start, span.end, None))
    checked: list[tuple[int, Any]] = []
    existing: set[int] = set()
    for line, person, institution, start, end in parsed:
        pid, iid = people_ids.get(person), institutions.get(institution)
        if pid is None:
            errors.add(line, f"no practitioner {person}")
        if iid is None:
            errors.add(line, f"no institution {institution}")
        if pid is None or iid is None:
            continue
        clash = next((h for h in held[(pid, institution)] if _overlaps(start, end, h[0], h[1])), None)
        if clash is not None and skip_existing and clash[2] is None and clash[0] == start:
            if clash[1] == end:
                existing.add(line)
            else:
                stored_end = clash[1].isoformat() if clash[1] else "none"
                errors.add(
                    line,
                    f"registration of {person} at {institution} from {start.isoformat()} exists with another "
                    f"end_date ({stored_end})",
                )
            continue
        if clash is not None:
            since = clash[0].isoformat()
            where = f"line {clash[2]}" if clash[2] is not None else "the database"
            same = clash[0] == start
            errors.add(
                line,
                f"{'duplicate' if same else 'overlapping'} registration of {person} at {institution} "
                f"(from {since}, in {where})",
            )
            continue
        state = states.get(pid)
        barred = state is not None and any(t.start <= start < t.barred_until for t in state.terminations)
        if barred:
            assert state is not None and state.barred_until is not None
            errors.add(
                line,
                f"re-registration of {person} is barred until {state.barred_until.isoformat()} "
                "(docs/rules.md rule 17)",
            )
            continue
        held[(pid, institution)].append((start, end, line))
        checked.append((line, (pid, iid, institution, start, end)))
    return _Checked(checked, people=people, institutions=institutions, existing=existing)


def _write_registrations(
    session: Session,
    checked: _Checked,
    rows: Sequence[tuple[int, int, str, dt.date, dt.date | None]],
    *,
    actor: str,
    policies: PolicySet,
    now: dt.datetime,
) -> None:
    ids = write_registrations(
        session, [(pid, iid, start, end) for pid, iid, _, start, end in rows], actor=actor, now=now
    )
    touched: dict[int, _Person] = {}
    for rid, (pid, _, institution, start, end) in zip(ids, rows, strict=True):
        person = checked.people[pid]
        person.registrations.append(rules.Registration(rid, institution, start, end))
        touched[pid] = person
    refresh_snapshots(session, touched, policies=policies, now=now)


def write_registrations(
    session: Session,
    rows: Sequence[tuple[int, int, dt.date, dt.date | None]],
    *,
    actor: str,
    now: dt.datetime,
) -> list[int]:
    """(practitioner_id, institution_id, start, end) rows; an ended one records who ended it."""
    ids = reserve_ids(session, Registration.__table__, len(rows))
    insert_rows(
        session,
        Registration.__table__,
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
        (
            (
                rid,
                pid,
                iid,
                start,
                end,
                None if end is None else "imported",
                now,
                actor,
                None if end is None else now,
                None if end is None else actor,
            )
            for rid, (pid, iid, start, end) in zip(ids, rows, strict=True)
        ),
    )
    return ids


def refresh_snapshots(
    session: Session, people: Mapping[int, _Person], *, policies: PolicySet, now: dt.datetime
) -> None:
    """Recompute and store the snapshots of people whose registrations changed.

    A status change (e.g. a bar ended and the new registration reinstates) is announced on the
    change feed as `recompute_state` would; nothing else is (the audit row records the import).
    """
    today = local_date(now)
    updates: list[SnapshotRow] = []
    inserts: list[SnapshotRow] = []
    for pid, person in people.items():
        state = person.derive(policies)
        state_json, status, next_on = snapshot_values(state, today)
        row = (pid, person.code, person.ledger_size, state_json, status, next_on)
        (updates if person.has_snapshot else inserts).append(row)
        kind = rules.transition_event(person.announced or "not_registered", status)
        if kind is not None:
            answer = rules.eligibility_on(state, today)
            events.emit(
                session,
                kind,
                data={
                    "practitioner_code": person.code,
                    "status": answer.status,
                    "previous_status": person.announced,
                    "on": today.isoformat(),
                    "until": answer.until.isoformat() if answer.until else None,
                    "barred_until": answer.barred_until.isoformat() if answer.barred_until else None,
                    "reason": answer.reason,
                },
                now=now,
                practitioner_id=pid,
                practitioner_code=person.code,
            )
    update_snapshots(session, updates, now=now)
    insert_snapshots(session, inserts, now=now)


# -- demo data ------------------------------------------------------------------------------------

# prefecture-level region codes (行政区划代码) and city names
_HEBEI = (
    ("130100", "石家庄"),
    ("130200", "唐山"),
    ("130300", "秦皇岛"),
    ("130400", "邯郸"),
    ("130500", "邢台"),
    ("130600", "保定"),
    ("130700", "张家口"),
    ("130800", "承德"),
    ("130900", "沧州"),
    ("131000", "廊坊"),
    ("131100", "衡水"),
)
_QINGHAI = (
    ("630100", "西宁"),
    ("630200", "海东"),
    ("632200", "海北"),
    ("632500", "海南州"),
    ("632800", "海西"),
)
_OTHERS = (
    ("110100", "北京"),
    ("120100", "天津"),
    ("310100", "上海"),
    ("440100", "广州"),
    ("510100", "成都"),
)
_DISTRICTS = ("02", "04", "05", "08", "21", "23", "27", "81")
_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
_GIVEN = "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红玉兰文斌博宇浩然欣怡子涵梓萱晨阳"
_MEDICAL = (
    ("physician", 40),
    ("nurse", 38),
    ("technician", 10),
    ("pharmacist", 6),
    ("settlement_reviewer", 6),
)
_PHARMACY = (("pharmacy_principal", 15), ("pharmacist", 45), ("pharmacy_staff", 40))
# the share of decisions per band (1–3, 4–6, 7–9, 10–12 points) and per responsibility
_BAND_WEIGHTS = ((1, 86.0), (2, 11.5), (3, 2.2), (4, 0.3))
_RESPONSIBILITY_WEIGHTS = (("general", 55), ("important", 32), ("main", 13))
_ID_SPACE_DAYS = 14_600  # birth dates 1960-01-01 .. 1999-12-21
_ID_SPACE = _ID_SPACE_DAYS * 1000  # x a 3-digit sequence number
_ID_STEP = 7_654_321  # coprime with the space: person i -> a distinct (birth date, sequence)


def gb11643(prefix17: str) -> str:
    """Append the GB 11643 (ISO 7064 MOD 11-2) check character."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return prefix17 + "10X98765432"[sum(int(d) * w for d, w in zip(prefix17, weights, strict=True)) % 11]


@dataclass
class DemoSummary:
    seed: int
    institutions: int = 0
    practitioners: int = 0
    registrations: int = 0
    multi_site: int = 0
    violations: int = 0
    measures: int = 0
    status: Counter = field(default_factory=Counter)
    people_suspended_ever: int = 0
    people_terminated: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    example_institution: str = ""
    example_practitioner: str = ""


def seed_demo(
    session: Session,
    *,
    practitioners: int,
    violations: int,
    institutions: int | None = None,
    seed: int = 1,
    keys: pii.PiiKeys,
    policies: PolicySet,
    now: dt.datetime,
    progress: Callable[[str], None] = lambda _: None,
) -> DemoSummary:
    """Realistic data for demos and benchmarks, written with the importer's bulk helpers.

    Decisions are recorded as the API would (profile by province and date, default points for the
    behaviour and responsibility, occurred_on inside a registration, decided_on not in the future)
    and every snapshot and measure is what the rules derive from the ledger written.
    """
    rng = random.Random(seed)
    today = local_date(now)
    actor = f"demo:seed-{seed}"
    summary = DemoSummary(seed=seed)
    k = institutions or max(10, practitioners // 500)
    if practitioners > _ID_SPACE:
        raise ValueError(f"at most {_ID_SPACE} practitioners")
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        summary.timings[name] = time.perf_counter() - clock
        progress(f"{name}: {summary.timings[name]:.1f} s")
        clock = time.perf_counter()

    if session.scalar(select(Practitioner.id).where(Practitioner.code == _person_code(seed, 0))) is not None:
        raise ValueError(f"demo data for seed {seed} is already in this database; pass another --seed")
    # institutions: mostly Hebei, some Qinghai, a few elsewhere; hospitals and pharmacies
    inst_rows: list[tuple[str, str, str, str]] = []
    for j in range(k):
        roll = rng.random()
        region, city = rng.choice(_HEBEI if roll < 0.8 else _QINGHAI if roll < 0.92 else _OTHERS)
        region = region[:4] + rng.choice(_DISTRICTS)
        medical = rng.random() < 0.8
        if medical:
            name = (
                f"{city}市第{j + 1}人民医院"
                if rng.random() < 0.6
                else f"{city}{rng.choice('仁康济和安华')}医院{j + 1}院区"
            )
        else:
            name = f"{city}{rng.choice('百济益大众康')}大药房第{j + 1}店"
        inst_rows.append(
            (
                _institution_code("H" if medical else "P", region, seed, j),
                name,
                "medical_institution" if medical else "retail_pharmacy",
                region,
            )
        )
    inst_ids = _write_institutions(session, inst_rows, now=now)
    summary.institutions = k
    summary.example_institution = inst_rows[0][0]
    # staff sizes vary: hospitals weigh 10x a pharmacy, times a Pareto-ish size factor
    weights = [
        (10.0 if kind == "medical_institution" else 1.0) * rng.paretovariate(1.5)
        for _, _, kind, _ in inst_rows
    ]
    by_province: dict[str, list[int]] = defaultdict(list)
    for j, (_, _, _, region) in enumerate(inst_rows):
        by_province[region[:2]].append(j)
    lap("institutions")

    # practitioners: a home institution, a category that fits it, a valid and unique national ID
    home = rng.choices(range(k), weights=weights, k=practitioners)
    index_of = national_id_index(keys)
    offset = rng.randrange(_ID_SPACE)
    base_day = dt.date(1960, 1, 1).toordinal()
    medical_cats = [c for c, _ in _MEDICAL]
    medical_w = [w for _, w in _MEDICAL]
    pharmacy_cats = [c for c, _ in _PHARMACY]
    pharmacy_w = [w for _, w in _PHARMACY]
    codes = [_person_code(seed, i) for i in range(practitioners)]

    def generated() -> Iterator[NewPractitioner]:
        for i in range(practitioners):
            inst = inst_rows[home[i]]
            if inst[2] == "medical_institution":
                category = rng.choices(medical_cats, medical_w)[0]
            else:
                category = rng.choices(pharmacy_cats, pharmacy_w)[0]
            slot = (offset + i * _ID_STEP) % _ID_SPACE
            birth = dt.date.fromordinal(base_day + slot // 1000)
            national_id = gb11643(f"{inst[3]}{birth:%Y%m%d}{slot % 1000:03d}")
            name = rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=rng.choice((1, 2, 2))))
            yield NewPractitioner(codes[i], name, category, national_id, index_of(national_id))

    # generated while the database ingests: the rows stream into COPY
    person_ids = reserve_ids(session, Practitioner.__table__, practitioners)
    write_practitioners(session, zip(person_ids, generated(), strict=True), keys=keys, now=now)
    summary.practitioners = practitioners
    summary.example_practitioner = codes[0]
    lap("practitioners written")

    # registrations: one at home; ~10 % also at a second institution in the province (多点执业);
    # ~6 % an earlier, ended one elsewhere; ~2 % whose home registration has ended
    regs: list[tuple[int, int, dt.date, dt.date | None]] = []  # (person index, inst index, start, end)
    early, late = dt.date(2008, 1, 1).toordinal(), (today - dt.timedelta(days=30)).toordinal()
    recent = dt.date(today.year - 1, 1, 1).toordinal()
    for i in range(practitioners):
        j = home[i]
        start = dt.date.fromordinal(
            rng.randint(early, dt.date(today.year - 2, 12, 31).toordinal())
            if rng.random() < 0.93
            else rng.randint(recent, late)
        )
        end = None
        if rng.random() < 0.02 and start.toordinal() + 60 < today.toordinal():
            end = dt.date.fromordinal(rng.randint(max(start.toordinal() + 60, recent), today.toordinal() - 1))
        regs.append((i, j, start, end))
        roll = rng.random()
        if roll < 0.10:
            peers = by_province[inst_rows[j][3][:2]]
            other = rng.choice(peers)
            if other != j:
                second = min(start.toordinal() + rng.randint(0, 1500), late)
                regs.append((i, other, dt.date.fromordinal(max(second, start.toordinal())), None))
                summary.multi_site += 1
        elif roll < 0.16 and start.toordinal() - 800 > early:
            other = rng.randrange(k)
            if other != j:
                old_end = start.toordinal() - rng.randint(0, 200)
                old_start = old_end - rng.randint(365, 2500)
                regs.append((i, other, dt.date.fromordinal(old_start), dt.date.fromordinal(old_end)))
    reg_ids = write_registrations(
        session,
        [(person_ids[i], inst_ids[j], start, end) for i, j, start, end in regs],
        actor=actor,
        now=now,
    )
    summary.registrations = len(regs)
    registrations_of: dict[int, list[rules.Registration]] = defaultdict(list)
    for rid, (i, j, start, end) in zip(reg_ids, regs, strict=True):
        registrations_of[i].append(rules.Registration(rid, inst_rows[j][0], start, end))
    lap("registrations")

    # decisions: over the previous and the current year, a few repeat offenders among them.
    # Recorded in decision-date order (ledger ids order decisions of the same day). A decision on
    # conduct after a termination ended the person's registrations is one the API would refuse:
    # it is dropped and another decision drawn in its place.
    by_person: dict[int, list[_Case]] = defaultdict(list)
    repeaters = rng.sample(range(practitioners), max(1, min(practitioners, violations // 20)))
    drawn = 0
    for _ in range(8):
        need = violations - sum(len(own) for own in by_person.values())
        if need <= 0:
            break
        new = _demo_decisions(
            rng,
            need,
            first_serial=drawn,
            seed=seed,
            practitioners=practitioners,
            repeaters=repeaters,
            registrations_of=registrations_of,
            inst_rows=inst_rows,
            policies=policies,
            today=today,
        )
        if not new:
            break
        drawn += len(new)
        for case in new:
            by_person[case.person].append(case)
        ordered = sorted(
            (c for own in by_person.values() for c in own), key=lambda c: (c.decided_on, c.person, c.serial)
        )
        for number, case in enumerate(ordered):
            case.entry = number
        for i in {case.person for case in new}:
            own = by_person[i]
            own.sort(key=lambda c: c.entry)
            while True:
                state = rules.derive_state(
                    decisions=[c.decision() for c in own],
                    registrations=registrations_of[i],
                    policies=policies.profiles,
                )
                ended = min((t.start for t in state.terminations), default=None)
                keep = [c for c in own if ended is None or c.occurred_on < ended]
                if len(keep) == len(own):
                    break
                own[:] = keep
    cases = sorted((c for own in by_person.values() for c in own), key=lambda c: c.entry)
    lap("decisions checked")

    violation_ids = reserve_ids(session, Violation.__table__, len(cases))
    entry_ids = reserve_ids(session, LedgerEntry.__table__, len(cases))
    for case, vid, eid in zip(cases, violation_ids, entry_ids, strict=True):
        case.violation_id, case.entry_id = vid, eid
    insert_rows(
        session,
        Violation.__table__,
        (
            "id",
            "case_ref",
            "practitioner_id",
            "institution_id",
            "behaviour_code",
            "responsibility",
            "adjustment",
            "adjustment_reason",
            "points",
            "occurred_on",
            "decided_on",
            "score_year",
            "profile_id",
            "description",
            "evidence_refs",
            "fingerprint",
            "created_at",
            "created_by",
        ),
        (
            (
                c.violation_id,
                c.case_ref,
                person_ids[c.person],
                inst_ids[c.institution],
                c.behaviour,
                c.responsibility,
                None,
                None,
                c.points,
                c.occurred_on,
                c.decided_on,
                score_year(c.decided_on),
                c.profile,
                f"demo decision: {c.behaviour} at {inst_rows[c.institution][0]}",
                "[]",
                RecordViolation(
                    case_ref=c.case_ref,
                    practitioner_code=codes[c.person],
                    institution_code=inst_rows[c.institution][0],
                    behaviour_code=c.behaviour,
                    responsibility=c.responsibility,
                    occurred_on=c.occurred_on,
                    decided_on=c.decided_on,
                    description=f"demo decision: {c.behaviour} at {inst_rows[c.institution][0]}",
                ).fingerprint(),
                now,
                actor,
            )
            for c in cases
        ),
    )
    insert_rows(
        session,
        LedgerEntry.__table__,
        (
            "id",
            "practitioner_id",
            "kind",
            "score_year",
            "effective_on",
            "points",
            "violation_id",
            "profile_id",
            "recorded_at",
            "recorded_by",
        ),
        (
            (
                c.entry_id,
                person_ids[c.person],
                "decision",
                score_year(c.decided_on),
                c.decided_on,
                c.points,
                c.violation_id,
                c.profile,
                now,
                actor,
            )
            for c in cases
        ),
    )
    summary.violations = len(cases)
    lap("decisions written")

    # every snapshot from the rules over what was written (final ids), measures as pending tasks
    institution_of_violation = {c.violation_id: inst_ids[c.institution] for c in cases}
    measure_rows = []

    def snapshots() -> Iterator[SnapshotRow]:
        for i in range(practitioners):
            own = by_person.get(i)
            state = rules.derive_state(
                decisions=[c.decision() for c in own] if own else (),
                registrations=registrations_of[i],
                policies=policies.profiles,
            )
            if own:
                summary.people_suspended_ever += bool(state.suspensions)
                summary.people_terminated += bool(state.terminations)
                measure_rows.extend(
                    (
                        person_ids[i],
                        institution_of_violation[m.violation_id],
                        m.violation_id,
                        m.year,
                        m.kind,
                        m.triggered_on,
                        "pending",
                        now,
                    )
                    for m in state.measures
                )
            state_json, status, next_on = snapshot_values(state, today)
            summary.status[status] += 1
            yield (person_ids[i], codes[i], len(own or ()), state_json, status, next_on)

    # derived while the database ingests: the snapshots stream into COPY
    insert_snapshots(session, snapshots(), now=now)
    lap("snapshots derived and written")
    measure_ids = reserve_ids(session, Measure.__table__, len(measure_rows))
    insert_rows(
        session,
        Measure.__table__,
        (
            "id",
            "practitioner_id",
            "institution_id",
            "violation_id",
            "year",
            "kind",
            "triggered_on",
            "state",
            "created_at",
        ),
        ((mid, *row) for mid, row in zip(measure_ids, measure_rows, strict=True)),
    )
    summary.measures = len(measure_rows)
    _audit(
        session,
        actor=actor,
        action="demo.seed",
        object_type="demo",
        object_id=str(seed),
        detail={
            "seed": seed,
            "institutions": summary.institutions,
            "practitioners": summary.practitioners,
            "registrations": summary.registrations,
            "violations": summary.violations,
            "measures": summary.measures,
        },
        now=now,
    )
    lap("measures written")
    return summary


def _institution_code(prefix: str, region: str, seed: int, j: int) -> str:
    return f"{prefix}{region}-{seed}-{j:05d}"


def _person_code(seed: int, i: int) -> str:
    return f"D{seed}-{i:07d}"


@dataclass
class _Case:
    person: int
    institution: int
    case_ref: str
    behaviour: str
    responsibility: str
    points: int
    occurred_on: dt.date
    decided_on: dt.date
    profile: str
    serial: int = 0
    entry: int = 0
    violation_id: int = 0
    entry_id: int = 0

    def decision(self) -> rules.Decision:
        # before ids are known the generation order stands in for them (same order, same result)
        return rules.Decision(
            self.entry_id or self.entry + 1,
            self.violation_id or -(self.entry + 1),
            self.decided_on,
            self.points,
            self.profile,
        )


def _demo_decisions(
    rng: random.Random,
    count: int,
    *,
    first_serial: int,
    seed: int,
    practitioners: int,
    repeaters: Sequence[int],
    registrations_of: Mapping[int, list[rules.Registration]],
    inst_rows: Sequence[tuple[str, str, str, str]],
    policies: PolicySet,
    today: dt.date,
) -> list[_Case]:
    """`count` decisions on registered people; most 1–3 points, fewer 4–6, rare 7–12."""
    earliest = max(p.effective_from for p in policies.profiles.values())
    window_start = max(dt.date(today.year - 1, 1, 1), earliest)
    if window_start > today:
        return []
    lo, hi = window_start.toordinal(), today.toordinal()
    code_index = {row[0]: j for j, row in enumerate(inst_rows)}
    default = policies.profiles[policies.default_id]
    by_band: dict[int, list[str]] = defaultdict(list)
    for behaviour in sorted(default.catalogue.values(), key=lambda b: b.code):
        by_band[behaviour.band].append(behaviour.code)
    bands = [b for b, _ in _BAND_WEIGHTS]
    band_w = [w for _, w in _BAND_WEIGHTS]
    resp = [r for r, _ in _RESPONSIBILITY_WEIGHTS]
    resp_w = [w for _, w in _RESPONSIBILITY_WEIGHTS]
    profile_cache: dict[tuple[str, dt.date], str] = {}
    cases: list[_Case] = []
    attempts = 0
    while len(cases) < count and attempts < count * 20 + 100:
        attempts += 1
        person = rng.choice(repeaters) if rng.random() < 0.15 else rng.randrange(practitioners)
        decided = rng.randint(lo, hi)
        occurred_floor = decided - rng.randint(0, 90)
        spans = [
            r
            for r in registrations_of.get(person, ())
            if r.start.toordinal() <= decided and (r.end is None or r.end.toordinal() > occurred_floor)
        ]
        if not spans:
            continue
        reg = rng.choice(spans)
        first = max(reg.start.toordinal(), occurred_floor)
        last = decided if reg.end is None else min(decided, reg.end.toordinal() - 1)
        if first > last:
            continue
        occurred = dt.date.fromordinal(rng.randint(first, last))
        decided_on = dt.date.fromordinal(decided)
        band = rng.choices(bands, band_w)[0]
        behaviour = rng.choice(by_band[band])
        responsibility = rng.choices(resp, resp_w)[0]
        j = code_index[reg.institution_code]
        region = inst_rows[j][3]
        key = (region[:2], decided_on)
        profile_id = profile_cache.get(key)
        if profile_id is None:
            profile_id = profile_cache[key] = policies.profile_for(region, decided_on).id
        policy = policies.profiles[profile_id]
        cases.append(
            _Case(
                person=person,
                institution=j,
                case_ref=f"DEMO-{seed}-{first_serial + len(cases):07d}",
                serial=first_serial + len(cases),
                behaviour=behaviour,
                responsibility=responsibility,
                points=policy.points_for(behaviour, responsibility),
                occurred_on=occurred,
                decided_on=decided_on,
                profile=profile_id,
            )
        )
    return cases


__all__ = [
    "COLUMNS",
    "KINDS",
    "DemoSummary",
    "ImportRefused",
    "ImportReport",
    "NewPractitioner",
    "import_csv",
    "insert_rows",
    "insert_snapshots",
    "national_id_index",
    "reserve_ids",
    "seed_demo",
    "update_snapshots",
    "write_practitioners",
    "write_registrations",
]
