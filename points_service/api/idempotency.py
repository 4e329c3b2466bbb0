"""Idempotency-Key on write views: the request's fingerprint, the claim and the replay
(services.idempotency keeps the claims)."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any

from flask import Response, json, request

from ..clock import utc_now
from ..services import idempotency as keys
from ..services.errors import RuleViolation
from .base import document, principal, session


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
        stored = keys.claim(db, client, key, fingerprint, now=now)
        if stored is not None:
            replay = Response(json.dumps(stored.body), status=stored.status_code, mimetype="application/json")
            replay.headers["Idempotent-Replayed"] = "true"
            if stored.location:
                replay.headers["Location"] = stored.location
            return replay
        response = func(*args, **kwargs)
        if isinstance(response, Response) and response.status_code < 400:
            keys.remember(
                db,
                client,
                key,
                fingerprint,
                status=response.status_code,
                body=response.get_json(),
                location=response.headers.get("Location"),
                now=now,
            )
        return response

    return document(wrapper, headers=("IdempotencyKey",))
