"""SQL constructs the two databases spell differently, compiled per dialect (SQLAlchemy's @compiles)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import BigInteger, Date, String, any_, bindparam
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from .engine import Reader, is_postgresql


def in_values(session: Reader, column: Any, values: Sequence[Any]) -> Any:
    """`column IN values`: one array parameter on PostgreSQL, plain IN on SQLite.

    An IN of n values is n parameters, which psycopg converts afresh on every call once there are
    more than it caches (the batch of 1000 codes spent about a tenth of its time there); an array is
    one parameter, and one statement for any n.
    """
    if is_postgresql(session):
        element = BigInteger() if values and isinstance(values[0], int) else String()
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(element)))
    return column.in_(list(values))


# values per statement of `rows_where_in`: PostgreSQL takes them as one array, SQLite binds at most
# 999 parameters in a statement
_PG_CHUNK = 50_000
_SQLITE_CHUNK = 900


def rows_where_in(session: Session, query: Any, column: Any, values: Iterable[Any]) -> Iterator[Any]:
    """The rows of `query` whose `column` is one of `values`, however many, a chunk at a time."""
    values = list(values)
    size = _PG_CHUNK if is_postgresql(session) else _SQLITE_CHUNK
    for start in range(0, len(values), size):
        yield from session.execute(query.where(in_values(session, column, values[start : start + size])))


class local_date_of(FunctionElement):  # noqa: N801
    """The legal date (Asia/Shanghai, UTC+8 all year, no daylight saving) of a UTC instant column."""

    type = Date()
    inherit_cache = True
    name = "local_date_of"


@compiles(local_date_of, "postgresql")
def _local_date_of_postgresql(element: local_date_of, compiler: Any, **kw: Any) -> str:
    return f"CAST(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'Asia/Shanghai' AS DATE)"


@compiles(local_date_of, "sqlite")
def _local_date_of_sqlite(element: local_date_of, compiler: Any, **kw: Any) -> str:
    # instants are stored as naive UTC text; China has kept UTC+8 without daylight saving since 1991
    return f"date({compiler.process(element.clauses, **kw)}, '+8 hours')"
