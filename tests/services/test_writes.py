"""A use case's rows sent together (persistence.writes): one statement on PostgreSQL, in order everywhere."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import event, select

from points_service.persistence.models import AuditEvent, OutboxEvent
from points_service.persistence.writes import Writes
from points_service.services import events
from points_service.services.audit import record_audit

NOW = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


def _collect(session, writes: Writes, marker: str) -> None:
    """Three events with an audit row between them, the way a decision interleaves its rows."""
    for n in range(3):
        events.emit(session, "year.rolled_over", data={"marker": marker, "n": n}, now=NOW, writes=writes)
        if n == 1:
            record_audit(
                session,
                None,
                action="test",
                object_type="test",
                object_id=marker,
                detail={},
                now=NOW,
                writes=writes,
            )


def _statements(session):
    seen: list[str] = []
    bind = session.connection()

    def count(conn, cursor, statement, parameters, context, executemany):  # noqa: ARG001
        seen.append(statement)

    event.listen(bind, "before_cursor_execute", count)
    return seen, lambda: event.remove(bind, "before_cursor_execute", count)


def test_events_sent_together_keep_the_order_they_were_emitted_in(session, unique):
    writes = Writes()
    _collect(session, writes, unique)
    writes.send(session)
    rows = session.execute(
        select(OutboxEvent.data).where(OutboxEvent.type == "year.rolled_over").order_by(OutboxEvent.id)
    ).scalars()
    assert [d["n"] for d in rows if d.get("marker") == unique] == [0, 1, 2]
    audit = session.scalars(select(AuditEvent).where(AuditEvent.object_id == unique)).all()
    assert len(audit) == 1


def test_rows_are_one_statement_on_postgresql_and_one_each_on_sqlite(session, unique):
    writes = Writes()
    _collect(session, writes, unique)
    seen, stop = _statements(session)
    try:
        writes.send(session)
    finally:
        stop()
    postgresql = session.get_bind().dialect.name == "postgresql"
    assert len(seen) == (1 if postgresql else 4)


def test_nothing_collected_sends_nothing_and_a_sent_batch_is_empty_again(session, unique):
    writes = Writes()
    seen, stop = _statements(session)
    try:
        writes.send(session)
        _collect(session, writes, unique)
        writes.send(session)
        count = len(seen)
        writes.send(session)
    finally:
        stop()
    assert count >= 1
    assert len(seen) == count
