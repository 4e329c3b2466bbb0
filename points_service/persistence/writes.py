"""Rows a use case writes at its end, sent together: one statement on PostgreSQL, in order on SQLite."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy import Table, and_, bindparam, insert, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.dml import UpdateBase

# (table, key columns of an update or None for an insert, values)
_Row = tuple[Table, tuple[str, ...] | None, dict[str, Any]]

# Statements by shape (tables, columns, row counts), built once: building a statement and its
# cache key on every request costs more than the round trips saved. Shapes are few (a decision
# writes 4 to 8 rows); the bound only guards against a caller whose shapes never repeat.
_STATEMENTS: dict[Hashable, UpdateBase] = {}
_MAX_STATEMENTS = 512


class Writes:
    """Inserts and updates collected by a write use case, then sent with `send`.

    On PostgreSQL they go as one statement: the rows of each table as one multi-row INSERT (its
    ids are handed out in the order the rows were added, which keeps the outbox in order), each
    in a data-modifying WITH clause. A round trip each would cost more than the rows. Foreign keys
    between them hold, because PostgreSQL checks them at the end of the statement. On SQLite each
    row is a statement of its own, in order. Nothing may read these rows before `send`.

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
                statement = _cached((table.name, key, _columns(values)), _statement, [row])
                session.execute(statement, _params(0, [values]))
            return
        groups: dict[Hashable, list[_Row]] = {}
        for n, row in enumerate(rows):
            table, key, values = row
            # an update stands alone; inserts into one table with the same columns share a statement
            groups.setdefault((table.name, key, _columns(values), n if key else None), []).append(row)
        shape = tuple((group, len(members)) for group, members in groups.items())
        statement = _cached(shape, _combined, list(groups.values()))
        params: dict[str, Any] = {}
        for g, members in enumerate(groups.values()):
            params.update(_params(g, [values for _, _, values in members]))
        session.execute(statement, params)


def _columns(values: dict[str, Any]) -> tuple:
    return tuple((c, id(v)) if isinstance(v, ClauseElement) else c for c, v in values.items())


def _params(group: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        f"w{group}_{j}_{c}": v
        for j, values in enumerate(rows)
        for c, v in values.items()
        if not isinstance(v, ClauseElement)
    }


def _cached(shape: Hashable, build: Callable[[Any], UpdateBase], rows: Any) -> UpdateBase:
    statement = _STATEMENTS.get(shape)
    if statement is None:
        if len(_STATEMENTS) >= _MAX_STATEMENTS:
            _STATEMENTS.clear()
        statement = _STATEMENTS[shape] = build(rows)
    return statement


def _statement(members: list[_Row], group: int = 0) -> UpdateBase:
    """One statement for rows of one table: a multi-row insert, or one update."""
    table, key, _ = members[0]

    def param(j: int, column: str, value: Any) -> Any:
        if isinstance(value, ClauseElement):
            return value
        return bindparam(f"w{group}_{j}_{column}", type_=table.c[column].type)

    if key is None:
        rows = [{c: param(j, c, v) for c, v in values.items()} for j, (_, _, values) in enumerate(members)]
        return insert(table).values(rows if len(rows) > 1 else rows[0])
    ((_, _, values),) = members
    return (
        update(table)
        .where(and_(*(table.c[c] == param(0, c, values[c]) for c in key)))
        .values({c: param(0, c, v) for c, v in values.items() if c not in key})
    )


def _combined(groups: list[list[_Row]]) -> UpdateBase:
    *first, last = [_statement(members, g) for g, members in enumerate(groups)]
    return last.add_cte(*(s.cte(f"w{i}") for i, s in enumerate(first))) if first else last
