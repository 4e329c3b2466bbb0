"""The Prometheus exposition: every worker's counters plus gauges read from the database.

Served by the app at /metrics (with POINTS_METRICS_TOKEN), or by the gunicorn master on
POINTS_METRICS_PORT. Kept apart from the Flask app, so the master imports no web code.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .persistence.models import OutboxEvent, PractitionerState, WebhookDelivery

__all__ = ["CONTENT_TYPE_LATEST", "DatabaseGauges", "exposition", "serve_metrics_port"]


class DatabaseGauges:
    """Read at scrape time from the database, so every process reports the same truth."""

    def __init__(self, sessions: Callable[[], AbstractContextManager[Session]]):
        self.sessions = sessions

    def collect(self):
        with self.sessions() as session:
            sanctions = GaugeMetricFamily(
                "points_sanctions_in_force", "People suspended or terminated today", labels=["status"]
            )
            for status, count in session.execute(
                select(PractitionerState.announced_status, func.count())
                .where(PractitionerState.announced_status.in_(("suspended", "terminated")))
                .group_by(PractitionerState.announced_status)
            ):
                sanctions.add_metric([str(status)], count)
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


def _counters() -> CollectorRegistry:
    """Every worker's counters under gunicorn (multiprocess), else this process's."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def exposition(gauges: DatabaseGauges) -> bytes:
    """Prometheus text: the counters, then the database gauges."""
    single = CollectorRegistry()
    single.register(gauges)
    return generate_latest(_counters()) + generate_latest(single)


def serve_metrics_port(port: int, database_url: str, **server: Any) -> None:
    """Serve the metrics on `port` from a thread of this process: the gunicorn master's.

    The workers write their counters to PROMETHEUS_MULTIPROC_DIR, which the master reads, and a
    scrape still answers while every worker is busy. Between scrapes the master holds no database
    connection, so no worker it forks inherits one.
    """
    from prometheus_client import start_http_server

    from .persistence.engine import make_engine

    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        raise RuntimeError(
            "POINTS_METRICS_PORT needs PROMETHEUS_MULTIPROC_DIR, where the workers write their "
            "counters (`points-service serve` sets it)"
        )
    engine = make_engine(database_url)

    @contextmanager
    def scrape_session():
        try:
            with Session(engine) as session:
                yield session
        finally:
            engine.dispose()

    gauges = DatabaseGauges(scrape_session)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(gauges)
    start_http_server(port, registry=registry, **server)
