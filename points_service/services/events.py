"""The outbox: change events written in the same transaction as the change, and the feed over them.

Events are CloudEvents 1.0 shaped, with thin payloads (codes, ids, dates, links). Webhook
deliveries carry the same envelope, and its `id` is the stable `webhook-id`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..persistence.models import OutboxEvent, Registration
from .access import Principal, require

EVENT_TYPES = (
    "violation.recorded",
    "violation.amended",
    "violation.revoked",
    "measure.triggered",
    "eligibility.suspended",
    "eligibility.reinstated",
    "eligibility.terminated",
    "eligibility.bar_expired",
    "registration.created",
    "registration.ended",
    "repair.submitted",
    "repair.institution_approved",
    "repair.approved",
    "repair.rejected",
    "appeal.filed",
    "appeal.upheld",
    "appeal.amended",
    "appeal.revoked",
    "appeal.window_closed",
    "year.rolled_over",
)
SOURCE = "/points-service"


def emit(
    session: Session,
    type_: str,
    *,
    data: dict[str, Any],
    now: dt.datetime,
    practitioner_id: int | None = None,
    practitioner_code: str | None = None,
    institution_id: int | None = None,
    dedupe_key: str | None = None,
) -> bool:
    """Write one event; with a `dedupe_key`, a second write of the same fact is a no-op.

    Returns whether a row was written.
    """
    assert type_ in EVENT_TYPES, type_
    values = {
        "event_id": str(uuid.uuid4()),
        "type": type_,
        "subject": f"practitioners/{practitioner_code}" if practitioner_code else None,
        "practitioner_id": practitioner_id,
        "institution_id": institution_id,
        "data": data,
        "dedupe_key": dedupe_key,
        "occurred_at": now,
    }
    if dedupe_key is None:
        session.add(OutboxEvent(**values))
        return True
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    written = session.execute(
        insert(OutboxEvent)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        # rowcount is -1 under psycopg for this statement; RETURNING says whether it was written
        .returning(OutboxEvent.id)
    ).first()
    return written is not None


def cloud_event(event: OutboxEvent) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event.event_id,
        "source": SOURCE,
        "type": event.type,
        "subject": event.subject,
        "time": event.occurred_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "sequence": event.id,
        "data": event.data,
    }


def visible_to(role: str, institution_id: int | None, practitioner_id: int | None):
    """The SQL filter for what a client may see of the feed (api.md Auth; issue 5's scopes).

    An HR system sees events about its staff (and, of decisions, only those made at its own
    institution) plus events about nobody in particular (the year rolling over).
    """
    if role in ("admin", "reviewer", "inspector"):
        return None
    if role == "practitioner":
        return or_(OutboxEvent.practitioner_id.is_(None), OutboxEvent.practitioner_id == practitioner_id)
    staff = exists().where(
        Registration.practitioner_id == OutboxEvent.practitioner_id,
        Registration.institution_id == institution_id,
    )
    return or_(
        OutboxEvent.practitioner_id.is_(None),
        and_(staff, or_(OutboxEvent.institution_id.is_(None), OutboxEvent.institution_id == institution_id)),
    )


def read_feed(
    session: Session, principal: Principal, *, after: int, limit: int, types: list[str] | None = None
) -> tuple[list[OutboxEvent], int]:
    """Events after the cursor, in order; returns them and the cursor to ask with next."""
    require(principal, "events:read")
    query = select(OutboxEvent).where(OutboxEvent.id > after).order_by(OutboxEvent.id).limit(limit)
    scope = visible_to(principal.role, principal.institution_id, principal.practitioner_id)
    if scope is not None:
        query = query.where(scope)
    if types:
        query = query.where(OutboxEvent.type.in_(types))
    events = list(session.scalars(query))
    return events, (events[-1].id if events else after)
