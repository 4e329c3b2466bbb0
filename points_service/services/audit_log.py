"""The audit trail, read back: every write, who did it, when, and a digest of the change."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..persistence.models import AuditEvent
from .access import Principal, require


def read_audit(
    session: Session,
    principal: Principal,
    *,
    actor: str | None,
    object_ref: str | None,
    since: dt.datetime | None,
    after: int | None,
    limit: int,
) -> tuple[list[AuditEvent], int | None]:
    """`object_ref` is `type` or `type/id` (e.g. `violation/12`); `actor` matches the key prefix too."""
    require(principal, "audit:read")
    query = select(AuditEvent).order_by(AuditEvent.id).limit(limit + 1)
    if actor:
        query = query.where(AuditEvent.actor.contains(actor))
    if object_ref:
        object_type, _, object_id = object_ref.partition("/")
        query = query.where(AuditEvent.object_type == object_type)
        if object_id:
            query = query.where(AuditEvent.object_id == object_id)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if after is not None:
        query = query.where(AuditEvent.id > after)
    rows = list(session.scalars(query))
    page = rows[:limit]
    return page, (page[-1].id if len(rows) > limit and page else None)
