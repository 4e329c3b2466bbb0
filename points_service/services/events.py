"""The outbox: change events written in the same transaction as the change, and the feed over them.

Events are CloudEvents 1.0 shaped, with thin payloads (codes, ids, dates, links). Webhook
deliveries carry the same envelope, and its `id` is the stable `webhook-id`.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Text, and_, cast, exists, func, literal, or_, select, tuple_
from sqlalchemy.orm import Session

from ..persistence.copy import copy_rows
from ..persistence.models import OutboxEvent, Registration
from .access import Principal, require, sees

EVENT_TYPES = (
    "violation.recorded",
    "violation.amended",
    "violation.revoked",
    "measure.triggered",
    "measure.withdrawn",
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


def _current_txid() -> Any:
    return cast(cast(func.pg_current_xact_id(), Text), BigInteger)


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
    """Add one event to the outbox, in the caller's transaction; returns whether it was added.

    With a `dedupe_key` (a sweep's fact, which another run of the same day finds again) an event
    already recorded under it is not added twice. Callers that announce under a key hold the
    person's lock or the job's, so the check cannot race; the unique index is the second wall.
    """
    assert type_ in EVENT_TYPES, type_
    if dedupe_key is not None and session.scalar(
        select(OutboxEvent.id).where(OutboxEvent.dedupe_key == dedupe_key)
    ):
        return False
    session.add(
        OutboxEvent(
            event_id=str(uuid.uuid4()),
            type=type_,
            subject=f"practitioners/{practitioner_code}" if practitioner_code else None,
            practitioner_id=practitioner_id,
            institution_id=institution_id,
            data=data,
            dedupe_key=dedupe_key,
            occurred_at=now,
            # PostgreSQL: the writing transaction's id orders the feed (positioned_after); SQLite
            # serialises writers, so there the id order is the commit order
            txid=_current_txid() if session.get_bind().dialect.name == "postgresql" else None,
        )
    )
    return True


@dataclass(frozen=True)
class NewEvent:
    """One event of many written at once (`emit_many`): what `emit` takes, without a dedupe key."""

    type: str
    data: dict[str, Any]
    practitioner_id: int | None = None
    practitioner_code: str | None = None
    institution_id: int | None = None


def emit_many(session: Session, new: Iterable[NewEvent], *, now: dt.datetime) -> int:
    """Add many events to the outbox in the caller's transaction, in bulk (persistence.copy), as
    `emit` would add them one by one, in order; the number added. For imports: an event of each of
    200,000 decisions written as ORM objects takes minutes."""
    txid = (
        session.scalar(select(_current_txid())) if session.get_bind().dialect.name == "postgresql" else None
    )
    rows = []
    for event in new:
        assert event.type in EVENT_TYPES, event.type
        rows.append(
            (
                str(uuid.uuid4()),
                event.type,
                f"practitioners/{event.practitioner_code}" if event.practitioner_code else None,
                event.practitioner_id,
                event.institution_id,
                json.dumps(event.data, ensure_ascii=False),
                now,
                txid,
            )
        )
    columns = (
        "event_id",
        "type",
        "subject",
        "practitioner_id",
        "institution_id",
        "data",
        "occurred_at",
        "txid",
    )
    return copy_rows(session, OutboxEvent, columns, rows)


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


def visible_to(principal: Principal):
    """The SQL filter for what a client may see of the feed; None: everything.

    An event that arose at an institution is read as access.sees says; a national event about a
    person (their eligibility) by every institution where they are or were registered; an event
    about nobody in particular (the year rolling over) by everyone.
    """
    if principal.is_national:
        return None
    arose_in_scope = and_(
        OutboxEvent.institution_id.is_not(None),
        sees(principal, practitioner=OutboxEvent.practitioner_id, institution=OutboxEvent.institution_id),
    )
    if principal.role == "practitioner":
        national = OutboxEvent.practitioner_id == principal.practitioner_id
    else:
        national = exists().where(
            Registration.practitioner_id == OutboxEvent.practitioner_id,
            Registration.institution_id == principal.institution_id,
        )
    return or_(
        OutboxEvent.practitioner_id.is_(None),
        arose_in_scope,
        and_(OutboxEvent.institution_id.is_(None), national),
    )


def positioned_after(session: Session, after: tuple[int, int]):
    """Events after a feed position, in commit-safe order.

    On PostgreSQL, ids are handed out before commit, so a lower id can become visible after a
    higher one. Reading in (txid, id) order, and only transactions older than every transaction
    still running, means nothing can later appear behind a position already handed out. SQLite
    serialises writers, so there id order is commit order.
    """
    if session.get_bind().dialect.name == "postgresql":
        horizon = select(
            cast(cast(func.pg_snapshot_xmin(func.pg_current_snapshot()), Text), BigInteger)
        ).scalar_subquery()
        own = cast(cast(func.pg_current_xact_id_if_assigned(), Text), BigInteger)
        return (
            select(OutboxEvent)
            .where(
                # plus the reader's own events: readers (the feed, the fan-out) write none before
                # they read, and a transaction sees its own rows (the test suite's outer one does)
                or_(OutboxEvent.txid < horizon, OutboxEvent.txid == own),
                tuple_(OutboxEvent.txid, OutboxEvent.id) > tuple_(literal(after[0]), literal(after[1])),
            )
            .order_by(OutboxEvent.txid, OutboxEvent.id)
        )
    return select(OutboxEvent).where(OutboxEvent.id > after[1]).order_by(OutboxEvent.id)


def position(event: OutboxEvent) -> tuple[int, int]:
    return (event.txid or 0, event.id)


def latest_position(session: Session) -> tuple[int, int]:
    """The newest position a reader could have seen now: where a new subscription starts."""
    query = positioned_after(session, (0, 0))
    newest = session.scalars(
        query.order_by(None).order_by(OutboxEvent.txid.desc(), OutboxEvent.id.desc()).limit(1)
    ).first()
    return position(newest) if newest is not None else (0, 0)


def read_feed(
    session: Session,
    principal: Principal,
    *,
    after: tuple[int, int],
    limit: int,
    types: list[str] | None = None,
) -> tuple[list[OutboxEvent], tuple[int, int]]:
    """Events after the position, in order; returns them and the position to ask from next."""
    require(principal, "events:read")
    query = positioned_after(session, after).limit(limit)
    scope = visible_to(principal)
    if scope is not None:
        query = query.where(scope)
    if types:
        query = query.where(OutboxEvent.type.in_(types))
    events = list(session.scalars(query))
    return events, (position(events[-1]) if events else after)
