"""Institutions from a CSV file: checked as the API checks one, then written in bulk."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...persistence.copy import copy_rows, reserve_ids
from ...persistence.models import Institution
from ...persistence.sql import rows_where_in
from ...rules.policy import INSTITUTION_KINDS
from .columns import check_code, check_name, check_region_code, differences
from .files import Record, RowErrors

# (code, name, kind, region_code)
InstitutionRow = tuple[str, str, str, str]
_KINDS = frozenset(INSTITUTION_KINDS)


@dataclass
class CheckedInstitutions:
    rows: list[tuple[int, InstitutionRow]]  # (line, row) of the rows to write, bad ones included
    existing: set[int] = field(default_factory=set)  # lines equal to what is stored (skip_existing)


def check_institutions(
    session: Session, records: Iterator[Record], errors: RowErrors, *, skip_existing: bool = False
) -> CheckedInstitutions:
    """Every row checked, then its code looked up: a stored institution is a bad row, or with
    `skip_existing` an existing one when the row equals it."""
    checked: list[tuple[int, InstitutionRow]] = []
    seen: dict[str, int] = {}
    for line, (code, name, kind, region) in records:
        if check_code(errors, line, "code", code):
            if code in seen:
                errors.add(line, f"duplicate code {code} (also on line {seen[code]})")
            else:
                seen[code] = line
        check_name(errors, line, name)
        if kind not in _KINDS:
            errors.add(line, f"unknown kind {kind!r} (one of {', '.join(INSTITUTION_KINDS)})")
        check_region_code(errors, line, region)
        checked.append((line, (code, name, kind, region)))
    given = dict(checked)
    existing = set()
    stored = select(Institution.code, Institution.name, Institution.kind, Institution.region_code)
    for code, *values in rows_where_in(session, stored, Institution.code, list(seen)):
        line = seen[code]
        differs = differences(values, given[line][1:], ("name", "kind", "region_code"))
        if skip_existing and not differs:
            existing.add(line)
        elif skip_existing:
            errors.add(line, f"institution {code} exists with another {differs}")
        else:
            errors.add(line, f"institution {code} already exists")
    return CheckedInstitutions([(line, row) for line, row in checked if line not in existing], existing)


def write_institutions(session: Session, rows: Sequence[InstitutionRow], *, now: dt.datetime) -> list[int]:
    """Institutions as plain rows (persistence.copy); their ids, in the order of `rows`."""
    ids = reserve_ids(session, Institution, len(rows))
    copy_rows(
        session,
        Institution,
        ("id", "code", "name", "kind", "region_code", "created_at"),
        ((iid, *row, now) for iid, row in zip(ids, rows, strict=True)),
    )
    return ids
