"""What every response carries and what every client is held to: security headers, the request
id, a body size limit (413) and a rate limit per API key (429 with Retry-After)."""

from __future__ import annotations

import hashlib

from flask import Flask, Response, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from ..settings import Settings
from .base import request_id

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def client_key() -> str:
    """Limits are per API key (a digest of it, never the key), else per address."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer ") and len(header) > 7:
        return "key:" + hashlib.sha256(header[7:].strip().encode()).hexdigest()[:32]
    return "ip:" + get_remote_address()


def init_security(app: Flask, settings: Settings) -> Limiter | None:
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers["X-Request-ID"] = request_id()
        return response

    if not settings.rate_limit:
        return None
    limiter = Limiter(
        client_key,
        app=app,
        # one budget per key across every endpoint (default_limits would count per route)
        application_limits=[settings.rate_limit],
        storage_uri=settings.redis_url or "memory://",
        strategy="moving-window",
        headers_enabled=True,
        key_prefix="points-service",
        # a broken Redis must not take the API down with it: fall back to per-process counting
        swallow_errors=True,
        in_memory_fallback_enabled=True,
    )
    for name in ("health.Live", "health.Ready"):
        view = app.view_functions.get(name)
        if view is not None:
            limiter.exempt(view)
    return limiter
