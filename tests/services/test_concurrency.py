"""Writes for one person are serialised: nothing is lost, nothing counted twice (PostgreSQL, real commits)."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from factories import Api, code, make_key
from sqlalchemy import func, select

from points_service.persistence.models import LedgerEntry, Measure, Practitioner, Violation

pytestmark = pytest.mark.postgresql

THREADS = 8
# 16 decisions on distinct dates in 2026: the outcome depends on dates, not on arrival order
DECISIONS = [
    (dt.date(2026, 1, 5) + dt.timedelta(days=9 * i), ("B1-01", "B1-02", "B1-99")[i % 3]) for i in range(16)
]


def _setup(app) -> tuple[Api, str, str, str]:
    sessions = app.extensions["points_service"].sessions
    admin = Api(app.test_client(), make_key(sessions, "admin"))
    inspector_key = make_key(sessions, "inspector")
    institution = admin.institution()
    person_a, person_b = admin.practitioner(), admin.practitioner()
    admin.register(person_a, institution, "2025-01-01")
    admin.register(person_b, institution, "2025-01-01")
    return admin, inspector_key, person_a, person_b, institution


def _body(person: str, institution: str, i: int, prefix: str) -> dict:
    day, behaviour = DECISIONS[i]
    return {
        "case_ref": f"{prefix}-{i}",
        "practitioner_code": person,
        "institution_code": institution,
        "behaviour_code": behaviour,
        "responsibility": "general",
        # conduct before the first decision: whether the person was registered then cannot depend
        # on the order the decisions arrive in (the twelfth point terminates the registration)
        "occurred_on": "2026-01-02",
        "decided_on": day.isoformat(),
    }


def _sanctions(admin: Api, person: str) -> list[tuple]:
    standing = admin.get(f"/v1/practitioners/{person}/standing", query={"year": 2026})
    return (
        [
            (s["kind"], s["start"], s.get("end"), s.get("months"), s.get("barred_until"), s["basis"])
            for s in standing["sanctions"]
        ],
        standing["points_total"],
        [(m["kind"], m["triggered_on"]) for m in standing["measures"]],
    )


def test_eight_threads_posting_for_one_person_count_every_decision_exactly_once(committed_app):
    admin, inspector_key, concurrent_person, serial_person, institution = _setup(committed_app)
    prefix_c, prefix_s = code("CC"), code("CS")
    barrier = threading.Barrier(THREADS)

    def worker(t: int) -> list[int]:
        client = committed_app.test_client()
        headers = {"Authorization": f"Bearer {inspector_key}"}
        barrier.wait()
        statuses = []
        for i in range(t, len(DECISIONS), THREADS):
            r = client.post(
                "/v1/violations", json=_body(concurrent_person, institution, i, prefix_c), headers=headers
            )
            statuses.append(r.status_code)
            # every thread also retries one shared case: it must count once
            statuses.append(
                client.post(
                    "/v1/violations", json=_body(concurrent_person, institution, 0, prefix_c), headers=headers
                ).status_code
            )
        return statuses

    with ThreadPoolExecutor(THREADS) as pool:
        statuses = [s for result in pool.map(worker, range(THREADS)) for s in result]
    assert set(statuses) <= {200, 201}
    assert statuses.count(201) == len(DECISIONS)

    inspector = Api(committed_app.test_client(), inspector_key)
    for i in range(len(DECISIONS)):
        inspector.post("/v1/violations", _body(serial_person, institution, i, prefix_s))

    concurrent, serial = _sanctions(admin, concurrent_person), _sanctions(admin, serial_person)
    assert concurrent == serial
    assert concurrent[1] == 16  # sixteen one-point decisions, each counted once
    # 9, 10 and 11 points top up the suspension; the twelfth terminates (rules 10, 14)
    assert [s[0] for s in concurrent[0]] == ["suspension", "suspension", "suspension", "termination"]

    sessions = committed_app.extensions["points_service"].sessions
    with sessions() as session:
        person_id = session.scalar(select(Practitioner.id).where(Practitioner.code == concurrent_person))
        assert (
            session.scalar(
                select(func.count()).select_from(Violation).where(Violation.practitioner_id == person_id)
            )
            == 16
        )
        assert (
            session.scalar(
                select(func.count()).select_from(LedgerEntry).where(LedgerEntry.practitioner_id == person_id)
            )
            == 16
        )
        # a decision arriving before an earlier-dated one may have triggered a measure first; the
        # recompute moves the trigger to the earlier decision and cancels (never deletes) the other
        kinds = session.scalars(
            select(Measure.kind).where(Measure.practitioner_id == person_id, Measure.state != "cancelled")
        ).all()
        assert sorted(kinds) == ["agency_talk", "institution_talk", "public_notice"]
