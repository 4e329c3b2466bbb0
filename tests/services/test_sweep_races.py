"""Two schedulers (or a scheduler and an operator) running the same sweep at the same moment act once
(PostgreSQL, real commits). `run_job` takes a transaction-scoped advisory lock per job: a
run that finds it held skips; a run that gets it after the first committed finds nothing left.

Facts are committed with unique codes; assertions count rows by dedupe key or by this test's person.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from factories import Api, make_key
from sqlalchemy import func, select

from points_service.clock import local_today, utc_now
from points_service.persistence.models import JobRun, OutboxEvent
from points_service.rules.appeals import appeal_window
from points_service.rules.calendar import LEGAL_TZ
from points_service.services.sweeps import run_job

pytestmark = pytest.mark.postgresql

THREADS = 8
SKIPPED = {"skipped": True}


def _runtime(app):
    return app.extensions["points_service"]


def _race(app, name: str, *, today: dt.date, threads: int = THREADS) -> list[dict]:
    """`threads` runs of one job released at the same instant; their results."""
    rt = _runtime(app)
    barrier = threading.Barrier(threads)
    # a later day stands for time having passed: the sweeps run at noon of it
    now = max(utc_now(), dt.datetime.combine(today, dt.time(12), LEGAL_TZ).astimezone(dt.UTC))

    def worker(_: int) -> dict:
        barrier.wait()
        return run_job(rt.sessions, name, settings=rt.settings, pii=rt.pii, now=now, today=today)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(worker, range(threads)))


def _count(app, **where) -> int:
    with _runtime(app).sessions() as session:
        query = select(func.count()).select_from(OutboxEvent)
        for column, value in where.items():
            query = query.where(getattr(OutboxEvent, column) == value)
        return session.scalar(query)


def _job_runs(app, job: str, today: dt.date) -> int:
    with _runtime(app).sessions() as session:
        return session.scalar(
            select(func.count()).select_from(JobRun).where(JobRun.job == job, JobRun.today == today)
        )


def _suspended_today(app) -> tuple[Api, str, str, dict]:
    """(admin, person, hospital, the suspension) with a 9-point decision of today, committed."""
    sessions = _runtime(app).sessions
    admin = Api(app.test_client(), make_key(sessions, "admin"))
    inspector = Api(app.test_client(), make_key(sessions, "inspector"))
    person, hospital = admin.person()
    violation = inspector.violation(
        person, hospital, behaviour_code="B3-01", responsibility="main", decided_on=local_today().isoformat()
    )
    (sanction,) = violation["triggered"]
    return admin, person, hospital, {**sanction, "violation_id": violation["id"]}


def _acted_once(results: list[dict], acted) -> None:
    """Every run either skipped (the lock was held) or found nothing to do, but one."""
    assert len(results) == THREADS
    ran = [r for r in results if r != SKIPPED]
    assert len([r for r in ran if acted(r)]) == 1, results
    assert SKIPPED in results or len(ran) == THREADS


@pytest.mark.parametrize("threads", [2, THREADS])
def test_racing_transition_sweeps_announce_a_suspension_ending_exactly_once(committed_app, threads):
    _, person, _, sanction = _suspended_today(committed_app)
    end = dt.date.fromisoformat(sanction["end"])
    key = f"eligibility.reinstated:{person}:{end.isoformat()}"
    runs_before = _job_runs(committed_app, "announce-transitions", end)

    results = _race(committed_app, "announce-transitions", today=end, threads=threads)

    assert _count(committed_app, dedupe_key=key) == 1
    assert _count(committed_app, subject=f"practitioners/{person}", type="eligibility.reinstated") == 1
    ran = [r for r in results if r != SKIPPED]
    assert len([r for r in ran if r["due"] > 0]) == 1, results
    assert all(r == {"due": 0, "announced": 0, "bars_expired": 0} for r in ran if r["due"] == 0)
    assert SKIPPED in results or len(ran) == threads
    # a run that skipped leaves no job_run row; every run that got the lock does
    assert _job_runs(committed_app, "announce-transitions", end) == runs_before + len(ran)


def test_racing_transition_sweeps_announce_a_bar_expiry_exactly_once(committed_app):
    sessions = _runtime(committed_app).sessions
    admin = Api(committed_app.test_client(), make_key(sessions, "admin"))
    inspector = Api(committed_app.test_client(), make_key(sessions, "inspector"))
    person, hospital = admin.person()
    violation = inspector.violation(
        person, hospital, behaviour_code="B4-01", responsibility="main", decided_on=local_today().isoformat()
    )
    (termination,) = violation["triggered"]
    barred_until = termination["barred_until"]
    later = dt.date.fromisoformat(barred_until) + dt.timedelta(days=1)

    results = _race(committed_app, "announce-transitions", today=later)

    _acted_once(results, lambda r: r["due"] > 0)
    assert _count(committed_app, dedupe_key=f"eligibility.bar_expired:{person}:{barred_until}") == 1
    assert _count(committed_app, subject=f"practitioners/{person}", type="eligibility.bar_expired") == 1
    assert _count(committed_app, subject=f"practitioners/{person}", type="eligibility.terminated") == 1


def test_racing_roll_overs_announce_the_new_year_exactly_once(committed_app):
    # a year no other test touches: year.rolled_over events are global
    year = random.randint(2200, 9000)
    key = f"year.rolled_over:{year}"
    assert _count(committed_app, dedupe_key=key) == 0

    results = _race(committed_app, "roll-over-year", today=dt.date(year, 1, 1))

    _acted_once(results, lambda r: r == {"announced": 1})
    assert all(r in (SKIPPED, {"announced": 1}, {"announced": 0}) for r in results)
    assert _count(committed_app, dedupe_key=key) == 1
    # and a late run on another day of that year still finds it done
    rt = _runtime(committed_app)
    later = dt.date(year, 3, 1)
    again = run_job(
        rt.sessions,
        "roll-over-year",
        settings=rt.settings,
        pii=rt.pii,
        now=dt.datetime.combine(later, dt.time(12), LEGAL_TZ).astimezone(dt.UTC),
        today=later,
    )
    assert again == {"announced": 0}


def test_racing_appeal_window_sweeps_close_a_window_exactly_once(committed_app):
    _, person, _, sanction = _suspended_today(committed_app)
    rt = _runtime(committed_app)
    deadline = appeal_window(local_today(), 15, rt.settings.calendar).deadline

    results = _race(committed_app, "close-appeal-windows", today=deadline + dt.timedelta(days=1))

    assert _count(committed_app, dedupe_key=f"appeal.window_closed:{sanction['violation_id']}") == 1
    assert _count(committed_app, subject=f"practitioners/{person}", type="appeal.window_closed") == 1
    ran = [r for r in results if r != SKIPPED]
    assert len([r for r in ran if r["closed"] > 0]) == 1, results
    assert SKIPPED in results or len(ran) == THREADS


class _Receiver(BaseHTTPRequestHandler):
    received: list[str] = []
    lock = threading.Lock()

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            self.received.append(self.headers["webhook-id"])
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_racing_dispatchers_deliver_each_event_once(committed_app):
    from dataclasses import replace

    base = _runtime(committed_app)
    committed_app.extensions["points_service"] = replace(
        base, settings=replace(base.settings, webhook_allow_private=True)
    )
    received: list[str] = []
    handler = type("Receiver", (_Receiver,), {"received": received, "lock": threading.Lock()})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        sessions = base.sessions
        admin = Api(committed_app.test_client(), make_key(sessions, "admin"))
        inspector = Api(committed_app.test_client(), make_key(sessions, "inspector"))
        person, hospital = admin.person()
        hr = Api(committed_app.test_client(), make_key(sessions, "hr_system", institution_code=hospital))
        hook = hr.post(
            "/v1/webhooks",
            {"url": f"http://127.0.0.1:{server.server_port}/hook", "event_types": ["violation.recorded"]},
        )
        for _ in range(3):
            inspector.violation(person, hospital, decided_on=local_today().isoformat())

        _race(committed_app, "dispatch-webhooks", today=local_today())
        _race(committed_app, "dispatch-webhooks", today=local_today())

        deliveries = hr.get(f"/v1/webhooks/{hook['id']}/deliveries")["items"]
        assert [(d["status"], d["attempts"]) for d in deliveries] == [("delivered", 1)] * 3
        assert Counter(received) == Counter({d["webhook_id"]: 1 for d in deliveries})
        hr.client.delete(f"/v1/webhooks/{hook['id']}", headers=hr.headers)  # leave no live subscription
    finally:
        committed_app.extensions["points_service"] = base
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _feed_end(api: Api) -> str | None:
    """The cursor after everything in the feed now."""
    cursor = None
    while True:
        page = api.get("/v1/events", query={"limit": 500, **({"after": cursor} if cursor else {})})
        if not page["items"]:
            return cursor
        cursor = page["next_cursor"]


def test_an_event_committed_after_a_later_numbered_event_is_still_served_and_delivered(committed_app):
    from dataclasses import replace

    from points_service.persistence.models import Practitioner
    from points_service.services import events

    base = _runtime(committed_app)
    committed_app.extensions["points_service"] = replace(
        base, settings=replace(base.settings, webhook_allow_private=True)
    )
    received: list[str] = []
    handler = type("Receiver", (_Receiver,), {"received": received, "lock": threading.Lock()})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    slow = base.sessions()
    hook = reviewer = None
    try:
        sessions = base.sessions
        admin = Api(committed_app.test_client(), make_key(sessions, "admin"))
        inspector = Api(committed_app.test_client(), make_key(sessions, "inspector"))
        reviewer = Api(committed_app.test_client(), make_key(sessions, "reviewer"))
        slow_person, hospital = admin.person()
        fast_person = admin.practitioner()
        admin.register(fast_person, hospital)
        hook = reviewer.post(
            "/v1/webhooks",
            {"url": f"http://127.0.0.1:{server.server_port}/hook", "event_types": ["violation.recorded"]},
        )
        cursor = _feed_end(reviewer)

        # a write for one person has written its outbox row (id N) and is still working ...
        slow_id = slow.scalar(select(Practitioner.id).where(Practitioner.code == slow_person))
        events.emit(
            slow,
            "violation.recorded",
            data={"practitioner_code": slow_person, "case_ref": "SLOW"},
            now=utc_now(),
            practitioner_id=slow_id,
            practitioner_code=slow_person,
        )
        slow.flush()
        # ... while a write for another person (id N + 1) commits first
        inspector.violation(fast_person, hospital, decided_on=local_today().isoformat())
        seen = reviewer.get("/v1/events", query={"after": cursor, "limit": 500})
        _race(committed_app, "dispatch-webhooks", today=local_today(), threads=1)
        slow.commit()  # now the first write commits
        _race(committed_app, "dispatch-webhooks", today=local_today(), threads=1)

        later = reviewer.get("/v1/events", query={"after": seen["next_cursor"], "limit": 500})
        served = [e["data"]["practitioner_code"] for e in seen["items"] + later["items"]]
        delivered = [d["event_type"] for d in reviewer.get(f"/v1/webhooks/{hook['id']}/deliveries")["items"]]
        assert (sorted(served), len(received), delivered) == (
            sorted([slow_person, fast_person]),
            2,
            ["violation.recorded", "violation.recorded"],
        )
    finally:
        slow.close()
        if hook is not None:
            reviewer.client.delete(f"/v1/webhooks/{hook['id']}", headers=reviewer.headers)
        committed_app.extensions["points_service"] = base
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
