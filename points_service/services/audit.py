"""Audit rows: who did what, when; written in the same transaction as the change."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from sqlalchemy.orm import Session

from ..persistence.models import AuditEvent
from ..persistence.writes import Writes
from .access import Principal


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


_INSERT = AuditEvent.__table__.insert()


def record_audit(
    session: Session,
    principal: Principal | None,
    *,
    action: str,
    object_type: str,
    object_id: str | int,
    detail: dict[str, Any],
    now: dt.datetime,
    request_id: str | None = None,
    writes: Writes | None = None,
) -> None:
    """`detail` must never hold a raw national ID: callers pass masked values only.

    A table insert in the caller's transaction (no unit-of-work flush): at once, or with the use
    case's other rows when given `writes`.
    """
    values = {
        "at": now,
        "actor": principal.actor if principal else "system",
        "role": principal.role if principal else "system",
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "request_id": request_id,
        "digest": digest(detail),
        "detail": detail,
    }
    if writes is not None:
        writes.insert(AuditEvent.__table__, values)
    else:
        session.execute(_INSERT, values)
