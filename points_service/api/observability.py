"""Per-request logging and Prometheus metrics (multiprocess-safe under gunicorn)."""

from __future__ import annotations

import os
import time

import structlog
from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from ..persistence.models import OutboxEvent, PractitionerState, WebhookDelivery
from .base import request_id, runtime

log = structlog.get_logger("points_service.http")

REQUESTS = Counter("points_http_requests_total", "HTTP requests", ["method", "endpoint", "status"])
LATENCY = Histogram(
    "points_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
DECISIONS = Counter("points_violations_recorded_total", "Scoring decisions recorded")


class DatabaseGauges:
    """Read at scrape time from the database, so every process reports the same truth."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        with self.app.app_context(), runtime().sessions() as session:
            sanctions = GaugeMetricFamily(
                "points_sanctions_in_force", "People suspended or terminated today", labels=["status"]
            )
            for status, count in session.execute(
                select(PractitionerState.announced_status, func.count())
                .where(PractitionerState.announced_status.in_(("suspended", "terminated")))
                .group_by(PractitionerState.announced_status)
            ):
                sanctions.add_metric([status], count)
            yield sanctions
            backlog = session.scalar(
                select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status == "pending")
            )
            yield GaugeMetricFamily(
                "points_webhook_backlog", "Webhook deliveries not yet delivered", value=backlog
            )
            oldest = session.scalar(
                select(func.min(OutboxEvent.occurred_at))
                .join(WebhookDelivery, WebhookDelivery.event_id == OutboxEvent.id)
                .where(WebhookDelivery.status == "pending")
            )
            age = (time.time() - oldest.timestamp()) if oldest else 0.0
            yield GaugeMetricFamily(
                "points_webhook_oldest_pending_seconds", "Age of the oldest undelivered event", value=age
            )


def init_observability(app: Flask) -> None:
    gauges = DatabaseGauges(app)

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

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus text format: every worker's counters (multiprocess) plus database gauges."""
        registry = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            multiprocess.MultiProcessCollector(registry)
        else:
            from prometheus_client import REGISTRY

            registry = REGISTRY
        body = generate_latest(registry) + generate_latest(_single(gauges))
        return Response(body, mimetype=CONTENT_TYPE_LATEST)


def _single(collector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry
