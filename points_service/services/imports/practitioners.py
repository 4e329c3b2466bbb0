"""Practitioners from a CSV file: each row checked once, its national ID normalised, indexed and
encrypted once, and written in bulk with the snapshot every new person starts with."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...persistence import pii
from ...persistence.copy import CONFLICTS, copy_rows, reserve_ids
from ...persistence.models import Practitioner
from ...persistence.sql import rows_where_in
from ...rules.policy import CATEGORIES
from .columns import check_code, check_name, differences
from .files import CsvFile, Imported, Record, RowErrors
from .snapshots import copy_empty_snapshots

_CATEGORIES = frozenset(CATEGORIES)
_PERSON_FIELDS = ("name", "category", "id_number")
_COLUMNS = (
    "id",
    "code",
    "name",
    "category",
    "national_id_cipher",
    "national_id_index",
    "national_id_masked",
    "created_at",
)


@dataclass(frozen=True)
class NewPractitioner:
    code: str
    name: str
    category: str
    national_id: str  # normalised (pii.normalise_national_id)
    index: str  # pii.blind_index of it


def national_id_index(keys: pii.PiiKeys) -> Callable[[str], str]:
    """`pii.blind_index` for numbers already normalised: the same HMAC, without re-validating."""
    key = keys.index_key

    def index(normalised: str) -> str:
        return hmac.new(key, normalised.encode("ascii"), hashlib.sha256).hexdigest()

    return index


def national_id_cipher(keys: pii.PiiKeys) -> Callable[[str, str], bytes]:
    """`pii.encrypt_national_id` for numbers already normalised in this pass: the same `pii.seal`
    (same blob layout, the code as associated data) without normalising the number again."""
    seal = pii.seal

    def cipher(normalised: str, code: str) -> bytes:
        return seal(keys, normalised.encode("ascii"), associated_data=code.encode("utf-8"))

    return cipher


def write_practitioners(
    session: Session, people: Iterable[tuple[int, NewPractitioner]], *, keys: pii.PiiKeys, now: dt.datetime
) -> int:
    """Insert (id, practitioner) rows with the national ID encrypted, indexed and masked.

    `people` may be a generator (the importer checks as it goes): the database ingests while the
    next rows are checked and encrypted.
    """
    cipher, mask = national_id_cipher(keys), pii.mask_national_id
    rows = (
        (pid, p.code, p.name, p.category, cipher(p.national_id, p.code), p.index, mask(p.national_id), now)
        for pid, p in people
    )
    return copy_rows(session, Practitioner, _COLUMNS, rows)


class _CheckedRows:
    """One checking pass over a practitioners file: one normalisation and one HMAC per row.

    `good()` yields the rows to write with their new ids while it goes. It stops yielding at the
    first bad row unless bad rows are to be skipped, and never yields a line in `skip_lines`.
    """

    def __init__(self, keys: pii.PiiKeys, errors: RowErrors, *, write: bool, skip_bad: bool, skip_lines=()):
        self.keys = keys
        self.index_of = national_id_index(keys)
        self.errors = errors
        self.write, self.skip_bad, self.skip_lines = write, skip_bad, frozenset(skip_lines)
        self.seen_codes: dict[str, int] = {}
        self.seen_ids: dict[str, int] = {}
        self.rows: dict[int, tuple[str, str, str]] = {}  # line -> (name, category, number), when kept
        self.checked: list[int] = []  # lines whose national ID was valid and new in the file
        self.ids: list[int] = []
        self.codes: list[str] = []

    def good(
        self, records: Iterator[Record], ids: Iterator[int], *, keep: bool = False
    ) -> Iterator[tuple[int, NewPractitioner]]:
        errors = self.errors
        for line, (code, name, id_number, category) in records:
            fields_ok = self._check_fields(line, code, name, category)
            number = self._national_id(line, id_number)
            if number is None:
                continue
            national_id, index = number
            self.checked.append(line)
            if keep:
                self.rows[line] = (name, category, national_id)
            if not fields_ok or not self.write or line in self.skip_lines or (errors and not self.skip_bad):
                continue
            pid = next(ids)
            self.ids.append(pid)
            self.codes.append(code)
            yield pid, NewPractitioner(code, name, category, national_id, index)

    def _check_fields(self, line: int, code: str, name: str, category: str) -> bool:
        ok = check_code(self.errors, line, "code", code)
        if ok and code in self.seen_codes:
            self.errors.add(line, f"duplicate code {code} (also on line {self.seen_codes[code]})")
            ok = False
        elif ok:
            self.seen_codes[code] = line
        ok = check_name(self.errors, line, name) and ok
        if category not in _CATEGORIES:
            self.errors.add(line, f"unknown category {category!r} (one of {', '.join(CATEGORIES)})")
            ok = False
        return ok

    def _national_id(self, line: int, id_number: str) -> tuple[str, str] | None:
        """(the normalised number, its index) when it is valid and new in the file."""
        try:
            national_id = pii.normalise_national_id(id_number)
        except pii.InvalidNationalId as exc:  # the message names the check, never the number
            self.errors.add(line, f"id_number: {exc}")
            return None
        index = self.index_of(national_id)
        first = self.seen_ids.setdefault(index, line)
        if first != line:
            self.errors.add(line, f"id_number is the same national ID as on line {first}")
            return None
        return national_id, index

    def database_conflicts(self, session: Session, *, skip_existing: bool = False) -> set[int]:
        """Codes and national IDs the database already holds are bad rows; with `skip_existing`
        a row equal to the stored person is not, and its line is returned among the existing."""
        existing = self._stored_codes(session, skip_existing=skip_existing)
        self._stored_national_ids(session, existing)
        return existing

    def _stored_codes(self, session: Session, *, skip_existing: bool) -> set[int]:
        existing: set[int] = set()
        stored = select(
            Practitioner.code, Practitioner.name, Practitioner.category, Practitioner.national_id_index
        )
        for code, name, category, index in rows_where_in(
            session, stored, Practitioner.code, list(self.seen_codes)
        ):
            line = self.seen_codes[code]
            given = self.rows.get(line)
            if not skip_existing or given is None:
                self.errors.add(line, f"practitioner {code} already exists")
                continue
            same_number = index in pii.blind_indexes(self.keys, given[2])
            differs = differences((name, category, same_number), (given[0], given[1], True), _PERSON_FIELDS)
            if differs:
                self.errors.add(line, f"practitioner {code} exists with another {differs}")
            else:
                existing.add(line)
        return existing

    def _stored_national_ids(self, session: Session, existing: set[int]) -> None:
        # while the index key is rotated a stored number may be indexed under either key
        by_index = dict(self.seen_ids)
        if self.keys.previous_index_key is not None:
            by_index |= {pii.blind_indexes(self.keys, row[2])[-1]: line for line, row in self.rows.items()}
        query = select(Practitioner.code, Practitioner.national_id_index)
        for code, index in rows_where_in(session, query, Practitioner.national_id_index, list(by_index)):
            line = by_index[index]
            if line not in existing and self.seen_codes.get(code) != line:
                self.errors.add(line, "id_number is already held by another practitioner")


def import_practitioners(
    session: Session,
    source: CsvFile,
    errors: RowErrors,
    *,
    keys: pii.PiiKeys,
    now: dt.datetime,
    skip_bad: bool,
    skip_existing: bool,
    dry_run: bool,
) -> Imported:
    """Import a practitioners file.

    The usual case is one pass: rows are checked, encrypted and copied as they are read, inside a
    savepoint, and the unique indexes find codes and national IDs the database already holds. If
    it does hold some, the careful way is taken: check every row first, ask the database about
    every code and national ID, then write the good rows. A dry run, and an import while the index
    key is rotated (the unique index cannot see a number indexed under the previous key), take
    the careful way from the start.
    """
    if not dry_run and keys.previous_index_key is None:
        check = _CheckedRows(keys, errors, write=True, skip_bad=skip_bad)
        imported = _in_one_pass(session, source, check, now=now)
        if imported is not None:
            return imported
        errors.by_line.clear()
    check = _CheckedRows(keys, errors, write=False, skip_bad=skip_bad)
    # the rows themselves are kept only when the database's must be compared with them
    keep = skip_existing or keys.previous_index_key is not None
    for _ in check.good(source.records("practitioners", errors), iter(()), keep=keep):
        pass
    existing = check.database_conflicts(session, skip_existing=skip_existing)
    if errors and not skip_bad:
        return Imported(None, len(existing))
    if dry_run:
        return Imported(
            sum(1 for line in check.checked if line not in errors and line not in existing), len(existing)
        )
    written = _write_good_rows(session, source, keys=keys, now=now, skip=set(errors.by_line) | existing)
    return Imported(written, len(existing))


def _in_one_pass(
    session: Session, source: CsvFile, check: _CheckedRows, *, now: dt.datetime
) -> Imported | None:
    """The import done while reading; None when the database holds a row's code or national ID
    (the savepoint is rolled back and nothing of the pass remains)."""
    savepoint = session.begin_nested()
    try:
        _copy_checked(session, source, check, now=now)
    except CONFLICTS:  # a code or national ID the database holds, found by its unique index
        savepoint.rollback()
        return None
    if check.errors and not check.skip_bad:
        savepoint.rollback()
        check.database_conflicts(session)  # the refusal names every conflict too
        return Imported(None)
    copy_empty_snapshots(session, check.ids, check.codes, now=now)
    savepoint.commit()
    return Imported(len(check.ids))


def _write_good_rows(
    session: Session, source: CsvFile, *, keys: pii.PiiKeys, now: dt.datetime, skip: set[int]
) -> int:
    """A second pass that writes every row but the lines in `skip` (bad, or already stored)."""
    check = _CheckedRows(keys, RowErrors(), write=True, skip_bad=True, skip_lines=skip)
    _copy_checked(session, source, check, now=now)
    copy_empty_snapshots(session, check.ids, check.codes, now=now)
    return len(check.ids)


def _copy_checked(session: Session, source: CsvFile, check: _CheckedRows, *, now: dt.datetime) -> None:
    """Read the file, writing the rows `check` lets through with new ids as they are read."""
    records = source.records("practitioners", check.errors, phase="importing")
    ids = iter(reserve_ids(session, Practitioner, source.count_lines()))
    write_practitioners(session, check.good(records, ids), keys=check.keys, now=now)
