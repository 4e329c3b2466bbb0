"""Rows a use case writes at its end, sent together: one statement on PostgreSQL, in order on SQLite."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy import Table, TextClause, and_, bindparam, insert, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.dml import UpdateBase

# (table, key columns of an update or None for an insert, values)
_Row = tuple[Table, tuple[str, ...] | None, dict[str, Any]]

# Statements by shape (tables and columns), built once: building a statement on every request
# costs more than the round trips it saves. Shapes are few (a decision writes 4 to 8 rows into 5
# tables); the bound only guards against a caller whose shapes never repeat.
_STATEMENTS: dict[Hashable, UpdateBase | TextClause] = {}
_MAX_STATEMENTS = 512
_POSTGRESQL = postgresql.dialect()


class Writes:
    """Inserts and updates collected by a write use case, then sent with `send`.

    On PostgreSQL they go as one statement, each table's rows as one JSON parameter expanded by
    `json_populate_recordset` into a multi-row INSERT (ids are handed out in the order the rows
    were added, which keeps the outbox in order) in a data-modifying WITH clause. A round trip per
    row would cost more than the rows, and a bound parameter per value would make psycopg parse
    the statement again on every call (it caches statements of at most 50 parameters). Foreign
    keys between the rows hold, because PostgreSQL checks them at the end of the statement. On
    SQLite each row is a statement of its own, in order. Nothing may read these rows before
    `send`.

    A value may be a SQL expression instead of a Python value (the outbox's transaction id); it
    is then part of the statement, so pass the same expression object each time.
    """

    def __init__(self) -> None:
        self._rows: list[_Row] = []

    def insert(self, table: Table, values: dict[str, Any]) -> None:
        self._rows.append((table, None, values))

    def update(self, table: Table, key: dict[str, Any], values: dict[str, Any]) -> None:
        self._rows.append((table, tuple(key), {**key, **values}))

    def send(self, session: Session) -> None:
        rows, self._rows = self._rows, []
        if not rows:
            return
        if len(rows) == 1 or session.get_bind().dialect.name != "postgresql":
            for row in rows:
                table, key, values = row
                statement = _cached((table.name, key, _columns(values)), _statement, row)
                session.execute(statement, {f"p_{c}": v for c, v in _params(values).items()})
            return
        groups: dict[Hashable, list[_Row]] = {}
        for n, row in enumerate(rows):
            table, key, values = row
            # an update stands alone; inserts into one table with the same columns share a statement
            groups.setdefault((table.name, key, _columns(values), n if key else None), []).append(row)
        members = list(groups.values())
        statement = _cached(("postgresql", *(g[:3] for g in groups)), _combined, members)
        session.execute(
            statement,
            {
                f"w{g}": _json(
                    [_params(values) for _, _, values in group]
                    if group[0][1] is None
                    else _params(group[0][2])
                )
                for g, group in enumerate(members)
            },
        )


def _columns(values: dict[str, Any]) -> tuple:
    return tuple((c, id(v)) if isinstance(v, ClauseElement) else c for c, v in values.items())


def _params(values: dict[str, Any]) -> dict[str, Any]:
    return {c: v for c, v in values.items() if not isinstance(v, ClauseElement)}


def _cached(shape: Hashable, build: Callable[[Any], Any], rows: Any) -> Any:
    statement = _STATEMENTS.get(shape)
    if statement is None:
        if len(_STATEMENTS) >= _MAX_STATEMENTS:
            _STATEMENTS.clear()
        statement = _STATEMENTS[shape] = build(rows)
    return statement


def _statement(row: _Row) -> UpdateBase:
    """One row: an insert or an update, with a bound parameter per value."""
    table, key, values = row

    def param(column: str, value: Any) -> Any:
        if isinstance(value, ClauseElement):
            return value
        return bindparam(f"p_{column}", type_=table.c[column].type)

    if key is None:
        return insert(table).values({c: param(c, v) for c, v in values.items()})
    return (
        update(table)
        .where(and_(*(table.c[c] == param(c, values[c]) for c in key)))
        .values({c: param(c, v) for c, v in values.items() if c not in key})
    )


def _combined(groups: list[list[_Row]]) -> TextClause:
    """PostgreSQL: every group as a WITH clause of one statement, its rows one JSON parameter."""
    quote = _POSTGRESQL.identifier_preparer.quote
    parts = []
    for g, group in enumerate(groups):
        table, key, values = group[0]
        name = quote(table.name)

        def value(column: str, v: Any) -> str:
            if isinstance(v, ClauseElement):
                return str(v.compile(dialect=_POSTGRESQL))
            return f"r.{quote(column)}"

        if key is None:
            columns = ", ".join(quote(c) for c in values)
            selected = ", ".join(value(c, v) for c, v in values.items())
            parts.append(
                f"INSERT INTO {name} ({columns}) SELECT {selected} "
                f"FROM json_populate_recordset(NULL::{name}, CAST(:w{g} AS json)) AS r"
            )
        else:
            assigned = ", ".join(f"{quote(c)} = {value(c, v)}" for c, v in values.items() if c not in key)
            matched = " AND ".join(f"t.{quote(c)} = r.{quote(c)}" for c in key)
            parts.append(
                f"UPDATE {name} AS t SET {assigned} "
                f"FROM json_populate_record(NULL::{name}, CAST(:w{g} AS json)) AS r WHERE {matched}"
            )
    *first, last = parts
    with_clause = ("WITH " + ", ".join(f"w{i} AS ({p})" for i, p in enumerate(first)) + " ") if first else ""
    return text(with_clause + last)


def _json(value: Any) -> str:
    return json.dumps(value, default=_encode, separators=(",", ":"), ensure_ascii=False)


def _encode(value: Any) -> str:
    """Dates and instants as PostgreSQL reads them back from JSON (instants in UTC, never naive)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC instant")
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a column value")
