"""Audit rows: who did what, when; written in the same transaction as the change."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from sqlalchemy.orm import Session

from ..persistence.models import AuditEvent
from .access import Principal


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


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
    actor: str | None = None,
) -> None:
    """One audit row in the caller's transaction. `detail` must never hold a raw national ID:
    callers pass masked values only. Without a principal the row is the system's; `actor` then
    says which part of it (an import of a file, the demo seed)."""
    session.add(
        AuditEvent(
            at=now,
            actor=principal.actor if principal else (actor or "system")[:200],
            role=principal.role if principal else "system",
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            request_id=request_id,
            digest=digest(detail),
            detail=detail,
        )
    )
