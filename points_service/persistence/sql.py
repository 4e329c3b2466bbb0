"""SQL constructs the two databases spell differently, compiled per dialect (SQLAlchemy's @compiles)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, BigInteger, String, any_, bindparam
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from .engine import is_postgresql


def in_values(session: Session, column: Any, values: Sequence[Any]) -> Any:
    """`column IN values`: one array parameter on PostgreSQL, plain IN on SQLite.

    An IN of n values is n parameters, which psycopg converts afresh on every call once there are
    more than it caches (the batch of 1000 codes spent about a tenth of its time there); an array is
    one parameter, and one statement for any n.
    """
    if is_postgresql(session):
        element = BigInteger() if values and isinstance(values[0], int) else String()
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(element)))
    return column.in_(list(values))


class json_rows(FunctionElement):  # noqa: N801 (a SQL function, named like one)
    """An aggregate: one JSON array per row of its columns, all rows in one JSON value ('[]' for none).

    Lets a single statement bring back a person's ledger and registrations beside their snapshot.
    Row order is not kept: callers sort.
    """

    type = JSON()
    inherit_cache = True
    name = "json_rows"


@compiles(json_rows, "postgresql")
def _json_rows_postgresql(element: json_rows, compiler: Any, **kw: Any) -> str:
    return f"coalesce(json_agg(json_build_array({compiler.process(element.clauses, **kw)})), '[]')"


@compiles(json_rows, "sqlite")
def _json_rows_sqlite(element: json_rows, compiler: Any, **kw: Any) -> str:
    return f"coalesce(json_group_array(json_array({compiler.process(element.clauses, **kw)})), '[]')"


class next_id(FunctionElement):  # noqa: N801
    """The id the next row of a table gets, taken now, so rows that refer to it go in one statement.

    PostgreSQL takes it from the column's sequence (an id taken by a request that then fails is a
    gap, as with any sequence); SQLite computes it, which is safe only under its write lock (every
    write transaction here begins IMMEDIATE).
    """

    type = BigInteger()
    inherit_cache = True
    name = "next_id"


def _table_name(element: next_id, compiler: Any, **kw: Any) -> str:
    (table,) = element.clauses
    return compiler.process(table, **kw)


@compiles(next_id, "postgresql")
def _next_id_postgresql(element: next_id, compiler: Any, **kw: Any) -> str:
    return f"nextval(pg_get_serial_sequence('{_table_name(element, compiler, **kw)}', 'id'))"


@compiles(next_id, "sqlite")
def _next_id_sqlite(element: next_id, compiler: Any, **kw: Any) -> str:
    return f"(SELECT coalesce(max(id), 0) + 1 FROM {_table_name(element, compiler, **kw)})"
