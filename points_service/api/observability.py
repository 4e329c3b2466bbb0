"""Per-request logging and Prometheus metrics (multiprocess-safe under gunicorn)."""

from __future__ import annotations

import hmac
import time

import structlog
from flask import Flask, Response, g, request
from prometheus_client import Counter, Histogram

from ..metrics import CONTENT_TYPE_LATEST, DatabaseGauges, exposition
from ..services.errors import NotAuthenticated
from .base import request_id

log = structlog.get_logger("points_service.http")

REQUESTS = Counter("points_http_requests_total", "HTTP requests", ["method", "endpoint", "status"])
LATENCY = Histogram(
    "points_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
DECISIONS = Counter("points_violations_recorded_total", "Scoring decisions recorded")


def init_observability(app: Flask) -> None:
    # the app's runtime is read at scrape time: tests swap it for one joined to their transaction
    gauges = DatabaseGauges(lambda: app.extensions["points_service"].sessions())

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id())

    @app.after_request
    def _finish(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        if endpoint != "/metrics":
            REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
            LATENCY.labels(request.method, endpoint).observe(elapsed)
            if endpoint == "/v1/violations" and response.status_code == 201:
                DECISIONS.inc()
        principal = g.get("principal")
        log.info(
            "request",
            method=request.method,
            path=request.path,
            status=response.status_code,
            duration_ms=round(elapsed * 1000, 2),
            client=principal.actor if principal is not None else None,
        )
        return response

    @app.teardown_request
    def _clear(_exc: BaseException | None) -> None:
        structlog.contextvars.clear_contextvars()

    settings = app.extensions["points_service"].settings
    if settings.metrics_port is not None or not settings.metrics_token:
        # served by the gunicorn master on its own port, or not at all: /metrics here is a 404
        return
    token = settings.metrics_token.encode()

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus text format: every worker's counters (multiprocess) plus database gauges.
        Needs `Authorization: Bearer <POINTS_METRICS_TOKEN>`: it shows the state of the whole
        service, and each scrape reads the database."""
        scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), token):
            raise NotAuthenticated("send the metrics token as 'Authorization: Bearer <token>'")
        g.metrics_token_accepted = True
        # content_type, not mimetype: Flask would append a second charset to this text/plain type
        return Response(exposition(gauges), content_type=CONTENT_TYPE_LATEST)
