"""Idempotency-Key: claim the key in the same transaction as the write, replay the stored response.

Stripe semantics: same key + same request -> the stored status and body; same key + different
request -> 422. A concurrent retry waits on the primary key (PostgreSQL) or the write lock (SQLite)
until the first commits, then replays; a failed request rolls its claim back, so a retry re-runs.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable
from typing import Any

from flask import Response, json, request
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..clock import utc_now
from ..persistence.models import IdempotencyKey
from ..services.errors import IdempotencyKeyReused, RuleViolation
from .base import document, principal, session

KEEP_FOR = dt.timedelta(days=7)
IN_PROGRESS = 0


def _fingerprint() -> str:
    try:
        body = json.dumps(request.get_json(silent=True), sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        body = request.get_data(as_text=True)
    raw = f"{request.method} {request.path}\n{body}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def idempotent(func: Callable) -> Callable:
    """Wraps a write view inside Blueprint.requires (so it shares the request transaction), and
    documents the header on the operation."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return func(*args, **kwargs)
        if not 1 <= len(key) <= 255:
            raise RuleViolation(
                "Idempotency-Key must be 1 to 255 characters",
                rule="docs/api.md Idempotency-Key",
                field="Idempotency-Key",
            )
        db, client = session(), principal().key_id
        fingerprint, now = _fingerprint(), utc_now()
        insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
        claimed = db.execute(
            insert(IdempotencyKey)
            .values(
                client_id=client,
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
        if claimed is None:
            stored = db.scalars(
                select(IdempotencyKey).where(IdempotencyKey.client_id == client, IdempotencyKey.key == key)
            ).one()
            if stored.fingerprint != fingerprint:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used for a different request; use a new key for a new request"
                )
            if stored.expires_at > now:
                replay = Response(
                    json.dumps(stored.body), status=stored.status_code, mimetype="application/json"
                )
                replay.headers["Idempotent-Replayed"] = "true"
                if stored.location:
                    replay.headers["Location"] = stored.location
                return replay
        response = func(*args, **kwargs)
        if isinstance(response, Response) and response.status_code < 400:
            db.execute(
                IdempotencyKey.__table__.update()
                .where(IdempotencyKey.client_id == client, IdempotencyKey.key == key)
                .values(
                    fingerprint=fingerprint,
                    status_code=response.status_code,
                    body=response.get_json(),
                    location=response.headers.get("Location"),
                    created_at=now,
                    expires_at=now + KEEP_FOR,
                )
            )
        return response

    return document(wrapper, headers=("IdempotencyKey",))
