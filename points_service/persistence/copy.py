"""The one exception to the unit of work: many plain rows at once, for imports and demo data.

Every other write goes through the ORM session. A file of 200,000 people written as ORM objects
takes minutes; COPY (PostgreSQL) and executemany (SQLite) take seconds. The rows still go into the
caller's transaction, so an import that fails leaves nothing, and the caller flushes its own
objects first. Callers name a model and its columns; the table is this module's business.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

import psycopg
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .engine import is_postgresql

# SQLite: rows sent per executemany, so a generator of rows is never held whole
_BATCH = 4000

# what writing a row that meets a unique index raises: psycopg's own error from COPY, SQLAlchemy's
# from executemany
CONFLICTS = (IntegrityError, psycopg.errors.IntegrityError)

# a recorded decision's two rows, column by column, as the imports and the demo seed write them
VIOLATION_COLUMNS = (
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
)
LEDGER_COLUMNS = (
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
)


def reserve_ids(session: Session, model: Any, count: int) -> list[int]:
    """Ids for `count` new rows of `model`, known before the rows are written, so that rows which
    refer to them (a person's snapshot, a decision's ledger entry) can be written beside them."""
    if count <= 0:
        return []
    if is_postgresql(session):
        sequence = session.scalar(select(func.pg_get_serial_sequence(model.__tablename__, "id")))
        ids = session.scalars(
            text("SELECT nextval(CAST(:sequence AS regclass)) FROM generate_series(1, :count)"),
            {"sequence": sequence, "count": count},
        )
        return list(ids)
    # SQLite: every write transaction begins IMMEDIATE and holds the database lock, so no one
    # else can take an id above max(id) before this transaction ends
    start = (session.scalar(select(func.max(model.id))) or 0) + 1
    return list(range(start, start + count))


def copy_rows(session: Session, model: Any, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write `rows` (values in the order of `columns`) into `model`'s table; the number written.

    `rows` may be a generator: on PostgreSQL the server ingests while the next rows are made. A JSON
    column takes its value as JSON text.
    """
    table = model.__table__
    unknown = [c for c in columns if c not in table.c]
    if unknown:
        raise ValueError(f"{table.name} has no column(s) {', '.join(unknown)}")
    if is_postgresql(session):
        return _copy_postgresql(session, table.name, columns, rows)
    return _insert_sqlite(session, table.name, columns, rows)


def _copy_postgresql(
    session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    count = 0
    raw = session.connection().connection.driver_connection  # psycopg's, inside the session's transaction
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _insert_sqlite(
    session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    connection = session.connection()
    count = 0
    for batch in _batches(rows):
        connection.exec_driver_sql(statement, [tuple(_sqlite_value(v) for v in row) for row in batch])
        count += len(batch)
    return count


def _batches(rows: Iterable[Sequence[Any]]) -> Iterator[list[Sequence[Any]]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, _BATCH)):
        yield batch


def _sqlite_value(value: Any) -> Any:
    """What the column types store on SQLite (persistence/base.py: instants as naive UTC text);
    the driver-level executemany skips their conversion."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
