"""Per-dialect SQL (persistence.sql): a filter on many values."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import event, select

from points_service.persistence.engine import is_postgresql
from points_service.persistence.models import Institution
from points_service.persistence.sql import in_values

NOW = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


def test_a_filter_on_many_values_finds_exactly_the_rows_holding_one_of_them(session, unique):
    codes = [f"H{unique}{n:04d}" for n in range(3)]
    session.add_all(
        Institution(code=code, name=code, kind="medical_institution", region_code="130100", created_at=NOW)
        for code in codes
    )
    session.flush()
    asked = [codes[0], codes[2], *(f"NONE{unique}{n:04d}" for n in range(1200))]
    found = session.scalars(select(Institution.code).where(in_values(session, Institution.code, asked)))
    assert sorted(found) == [codes[0], codes[2]]


def test_a_filter_on_many_values_is_one_parameter_on_postgresql_and_one_each_on_sqlite(session, unique):
    sent: list[object] = []
    bind = session.connection()

    def keep(conn, cursor, statement, parameters, context, executemany):  # noqa: ARG001
        sent.append(parameters)

    event.listen(bind, "before_cursor_execute", keep)
    try:
        values = [f"NONE{unique}{n:04d}" for n in range(1200)]
        session.execute(select(Institution.id).where(in_values(session, Institution.code, values))).all()
    finally:
        event.remove(bind, "before_cursor_execute", keep)
    (parameters,) = sent
    # psycopg caches the conversion of statements of up to 50 parameters; 1200 would be redone per call
    assert len(parameters) == (1 if is_postgresql(session) else 1200)
