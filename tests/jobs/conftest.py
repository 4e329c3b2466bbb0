"""Fixtures for the scheduled sweeps: the API clients that build the facts, and a sweep runner.

Every sweep runs through `run_job` on the test's app runtime, so it is one savepoint inside the
test's outer transaction: what it writes is rolled back with the test.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from points_service.clock import utc_now
from points_service.persistence.models import JobRun, OutboxEvent, WebhookAttempt, WebhookDelivery
from points_service.rules.calendar import LEGAL_TZ, local_date
from points_service.services.sweeps import run_job


@pytest.fixture
def rt(app):
    return app.extensions["points_service"]


@pytest.fixture
def private_webhooks(app):
    """Webhook URLs on loopback allowed (settings.webhook_allow_private), for local receivers."""
    runtime = app.extensions["points_service"]
    app.extensions["points_service"] = replace(
        runtime, settings=replace(runtime.settings, webhook_allow_private=True)
    )
    yield app.extensions["points_service"]
    app.extensions["points_service"] = runtime


@pytest.fixture
def sweep(app):
    """run(name, today=..., now=...) -> the job's result, exactly as the scheduler would run it.

    A `today` ahead of the real one stands for time having passed: the sweep runs at noon of that
    day (a sweep never runs for a day after its `now`)."""

    def run(name: str, *, today: dt.date | None = None, now: dt.datetime | None = None) -> dict:
        rt = app.extensions["points_service"]
        if now is None:
            now = utc_now()
            if today is not None and today > local_date(now):
                now = dt.datetime.combine(today, dt.time(12), LEGAL_TZ).astimezone(dt.UTC)
        return run_job(rt.sessions, name, settings=rt.settings, pii=rt.pii, now=now, today=today)

    return run


@pytest.fixture
def outbox(session):
    """outbox(subject=..., type=..., dedupe_key=...) -> [(type, data)] in feed order."""

    def rows(**where) -> list[tuple[str, dict]]:
        query = select(OutboxEvent).order_by(OutboxEvent.id)
        for column, value in where.items():
            query = query.where(getattr(OutboxEvent, column) == value)
        return [(e.type, e.data) for e in session.scalars(query)]

    return rows


@pytest.fixture
def counts(session):
    """() -> rows per table a sweep may write: outbox_event, webhook_delivery, webhook_attempt, job_run."""

    def now() -> dict[str, int]:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (OutboxEvent, WebhookDelivery, WebhookAttempt, JobRun)
        }

    return now
