"""What every response carries and what every client is held to: security headers, the request
id, a body size limit (413), a rate limit per API key (429 with Retry-After), and a tighter one per
address for keys this service does not know, so keys cannot be guessed at the rate of the API."""

from __future__ import annotations

import hashlib
import logging
import math
import time

from flask import Flask, Response, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse as parse_limit

from ..settings import Settings
from .base import request_id
from .errors import problem

log = logging.getLogger("points_service.api")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# the only answers after which waiting helps; flask-limiter would put it on every response
RETRY_AFTER_STATUSES = frozenset({429, 503})
# what anyone may fetch without a key; never counted as a refused key
PUBLIC_ENDPOINTS = frozenset({"health.Live", "health.Ready"})
PUBLIC_BLUEPRINTS = frozenset({"api-docs", "docs"})


def bearer_digest() -> str | None:
    """A digest of the bearer key sent, never the key itself; None when none was sent. Computed
    once a request: the limiter and the refused-key gate each ask for it."""
    if "bearer_digest" not in g:
        header = request.headers.get("Authorization", "")
        key = header[7:].strip() if header.lower().startswith("bearer ") else ""
        g.bearer_digest = hashlib.sha256(key.encode()).hexdigest()[:32] if key else None
    return g.bearer_digest


def client_key() -> str:
    """Limits are per API key (a digest of it, never the key), else per address."""
    digest = bearer_digest()
    return "key:" + digest if digest else "ip:" + get_remote_address()


class KeyGuessing:
    """Refused keys are counted per client address; past the budget, keys this service has not
    seen accepted answer 429 without being looked up.

    Without this, every distinct bearer string had a budget of its own, so guessing was limited
    only by the network. Keys seen accepted recently (marked in the limiter's storage, so every
    worker and instance shares them) pass the gate, and a refused one is forgotten: a client whose
    address is shared with a guesser keeps working. A key never used before waits, like a guess,
    until the address's window clears; answering it would tell the guesser which key is real.
    """

    # how long a key accepted once counts as known, and how often a process refreshes the mark
    KNOWN_FOR = 24 * 3600
    REFRESH_AFTER = 600

    def __init__(self, limiter: Limiter, budget: str):
        self.limiter = limiter
        self.budget = parse_limit(budget)
        # digest -> when this process last marked it known (monotonic seconds)
        self.marked: dict[str, float] = {}

    @staticmethod
    def _mark(digest: str) -> str:
        return f"points-service/known-key/{digest}"

    def _marked_here(self, digest: str) -> bool:
        marked = self.marked.get(digest)
        return marked is not None and time.monotonic() - marked < self.REFRESH_AFTER

    def known(self, digest: str) -> bool:
        return self._marked_here(digest) or self.limiter.limiter.storage.get(self._mark(digest)) > 0

    def refusal(self, digest: str) -> Response | None:
        """429 when this address has used up its budget of refused keys and this key is not known."""
        if self._marked_here(digest):
            # a key in use costs no trip to the storage
            return None
        strategy = self.limiter.limiter
        address = get_remote_address()
        if strategy.test(self.budget, "refused-keys", address) or self.known(digest):
            return None
        reset_at = strategy.get_window_stats(self.budget, "refused-keys", address).reset_time
        wait = max(1, math.ceil(reset_at - time.time()))
        return problem(
            429,
            "Too many requests",
            f"too many requests with unknown API keys from this address; retry after {wait} seconds",
            slug="rate-limited",
            headers={"Retry-After": str(wait)},
        )

    def refused(self, digest: str) -> None:
        self.limiter.limiter.hit(self.budget, "refused-keys", get_remote_address())
        # a key accepted before and refused now was revoked or has expired: no longer known
        self.marked.pop(digest, None)
        self.limiter.limiter.storage.clear(self._mark(digest))

    def accepted(self, digest: str) -> None:
        if not self._marked_here(digest):
            self.limiter.limiter.storage.incr(self._mark(digest), self.KNOWN_FOR)
            self.marked[digest] = time.monotonic()


def _counts_keys() -> bool:
    return request.endpoint is not None and not (
        request.endpoint in PUBLIC_ENDPOINTS or request.blueprint in PUBLIC_BLUEPRINTS
    )


def init_security(app: Flask, settings: Settings) -> Limiter | None:
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    guessing: KeyGuessing | None = None

    @app.after_request
    def _headers(response: Response) -> Response:
        # runs after flask-limiter's own hook (hooks run in reverse order of registration)
        headers = response.headers
        if response.status_code not in RETRY_AFTER_STATUSES:
            headers.pop("Retry-After", None)
        # one pass over what the response already set (a page sets its own policy), then one
        # extend: werkzeug's setdefault scans the header list once per header
        present = {name.lower() for name, _ in headers.items()}
        headers.extend([(n, v) for n, v in SECURITY_HEADERS.items() if n.lower() not in present])
        headers["X-Request-ID"] = request_id()
        return response

    # registered before the limiter's hook, so a refused guess is not counted as a key's request
    @app.before_request
    def _refuse_key_guessing() -> Response | None:
        if guessing is None:
            return None
        digest = bearer_digest()
        if digest is None or not _counts_keys():
            return None
        try:
            return guessing.refusal(digest)
        except Exception:
            # a broken Redis must not take the API down: let the request be authenticated as usual
            log.warning("refused-key limit not checked: its storage failed", exc_info=True)
            return None

    @app.after_request
    def _count_refused_keys(response: Response) -> Response:
        if guessing is None:
            return response
        digest = bearer_digest()
        if digest is None or not _counts_keys():
            return response
        try:
            if response.status_code == 401:
                guessing.refused(digest)
            elif g.get("principal") is not None or g.get("metrics_token_accepted"):
                guessing.accepted(digest)
        except Exception:
            log.warning("refused-key limit not counted: its storage failed", exc_info=True)
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
        # X-RateLimit-Limit/-Remaining/-Reset let a client pace itself before it is refused
        headers_enabled=True,
        key_prefix="points-service",
        # a broken Redis must not take the API down with it: fall back to per-process counting
        swallow_errors=True,
        in_memory_fallback_enabled=True,
    )
    for name in PUBLIC_ENDPOINTS:
        view = app.view_functions.get(name)
        if view is not None:
            limiter.exempt(view)
    if settings.auth_failure_limit:
        guessing = KeyGuessing(limiter, settings.auth_failure_limit)
    return limiter
