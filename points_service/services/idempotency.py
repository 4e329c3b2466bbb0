"""Idempotency-Key claims (docs/api.md Idempotency-Key): a key is claimed in the same transaction
as the write it protects, and the response is kept with it for a week.

Stripe semantics: same key + same request -> the stored status and body; same key + different
request -> 422. A concurrent retry waits on the primary key (PostgreSQL) or the write lock (SQLite)
until the first commits, then replays; a failed request rolls its claim back, so a retry re-runs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..persistence.models import IdempotencyKey
from .errors import IdempotencyKeyReused

KEEP_FOR = dt.timedelta(days=7)
IN_PROGRESS = 0


def claim(
    session: Session, client_id: int, key: str, fingerprint: str, *, now: dt.datetime
) -> IdempotencyKey | None:
    """Claim the key for this request; returns the stored answer to replay, or None to go on.

    The claim is one INSERT … ON CONFLICT DO NOTHING: two requests with one key cannot both pass.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    claimed = session.execute(
        insert(IdempotencyKey)
        .values(
            client_id=client_id,
            key=key,
            fingerprint=fingerprint,
            status_code=IN_PROGRESS,
            body={},
            created_at=now,
            expires_at=now + KEEP_FOR,
        )
        .on_conflict_do_nothing(index_elements=["client_id", "key"])
        # rowcount is -1 for this statement under psycopg 3; RETURNING says whether we claimed it
        .returning(IdempotencyKey.key)
    ).first()
    if claimed is not None:
        return None
    stored = session.get(IdempotencyKey, (client_id, key), populate_existing=True)
    assert stored is not None
    if stored.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used for a different request; use a new key for a new request"
        )
    return stored if stored.expires_at > now else None


def remember(
    session: Session,
    client_id: int,
    key: str,
    fingerprint: str,
    *,
    status: int,
    body: Any,
    location: str | None,
    now: dt.datetime,
) -> None:
    """Keep the answer with the claim, for a week, in the request's transaction."""
    stored = session.get(IdempotencyKey, (client_id, key), populate_existing=True)
    assert stored is not None
    stored.fingerprint = fingerprint
    stored.status_code = status
    stored.body = body
    stored.location = location
    stored.created_at = now
    stored.expires_at = now + KEEP_FOR
