"""Reviewers pressing the button at the same moment: one review wins, the others get 409, nothing is
credited or reversed twice (PostgreSQL, real commits; docs/api.md Repairs and Violations).

Every decision here is made today (the real clock, Asia/Shanghai): repair credits apply today, in
today's score year, and a decision of today is always inside its appeal window."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from factories import Api, make_key
from sqlalchemy import func, select

from points_service.clock import local_today
from points_service.persistence.models import LedgerEntry

pytestmark = pytest.mark.postgresql

THREADS = 8
PROBLEM = "application/problem+json"


def _today() -> str:
    return local_today().isoformat()


def _standing(admin: Api, person: str) -> dict:
    return admin.get(f"/v1/practitioners/{person}/standing", query={"year": local_today().year})


def _sessions(app):
    return app.extensions["points_service"].sessions


def _scored(app, **violation) -> tuple[Api, str, str, dict]:
    """(admin, person, hospital, the violation), all committed, with unique codes."""
    sessions = _sessions(app)
    admin = Api(app.test_client(), make_key(sessions, "admin"))
    inspector = Api(app.test_client(), make_key(sessions, "inspector"))
    person, hospital = admin.person()
    return admin, person, hospital, inspector.violation(person, hospital, **violation)


def _race(app, keys: list[str], path: str, bodies: list[dict]) -> list[tuple[int, dict, str]]:
    """POST bodies[i] to path with keys[i], all threads released at once: (status, json, mimetype)."""
    barrier = threading.Barrier(len(keys))

    def worker(i: int):
        client = app.test_client()
        barrier.wait()
        response = client.post(path, json=bodies[i], headers={"Authorization": f"Bearer {keys[i]}"})
        return response.status_code, response.get_json(), response.mimetype

    with ThreadPoolExecutor(len(keys)) as pool:
        return list(pool.map(worker, range(len(keys))))


def _losers_are_409_problems(results) -> None:
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] + [409] * (len(results) - 1), [body for _, body, _ in results]
    for status, body, mimetype in results:
        if status == 409:
            assert mimetype == PROBLEM and body["status"] == 409


def _ledger_count(app, **where) -> int:
    with _sessions(app)() as session:
        query = select(func.count()).select_from(LedgerEntry)
        for column, value in where.items():
            query = query.where(getattr(LedgerEntry, column) == value)
        return session.scalar(query)


def _institution_approved_repair(app, activity="offline_training") -> tuple[Api, str, dict]:
    admin, person, hospital, _ = _scored(
        app, behaviour_code="B2-01", responsibility="general", decided_on=_today()
    )
    sessions = _sessions(app)
    own = Api(app.test_client(), make_key(sessions, "practitioner", practitioner_code=person))
    hr = Api(app.test_client(), make_key(sessions, "hr_system", institution_code=hospital))
    submitted = own.post(
        "/v1/repairs",
        {
            "practitioner_code": person,
            "institution_code": hospital,
            "activity": activity,
            "completed_on": _today(),
            "evidence_ref": "certificate",
        },
    )
    approved = hr.post(
        f"/v1/repairs/{submitted['id']}/institution-review",
        {"decision": "approve", "comment": None, "version": submitted["version"]},
        status=200,
    )
    assert approved["status"] == "institution_approved"
    return admin, person, approved


def _open_appeal(app) -> tuple[Api, str, dict, dict]:
    admin, person, _, violation = _scored(
        app, behaviour_code="B3-01", responsibility="main", decided_on=_today()
    )
    own = Api(app.test_client(), make_key(_sessions(app), "practitioner", practitioner_code=person))
    appeal = own.post(f"/v1/violations/{violation['id']}/appeals", {"reason": "not me"})
    return admin, person, violation, appeal


# -- repairs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("reviewers", [2, THREADS])
def test_reviewers_approving_one_repair_at_once_credit_it_exactly_once(committed_app, reviewers):
    admin, person, application = _institution_approved_repair(committed_app)
    keys = [make_key(_sessions(committed_app), "reviewer") for _ in range(reviewers)]
    body = {"decision": "approve", "comment": "ok", "version": application["version"]}
    results = _race(committed_app, keys, f"/v1/repairs/{application['id']}/agency-review", [body] * reviewers)

    _losers_are_409_problems(results)
    [winner] = [b for s, b, _ in results if s == 200]
    assert (winner["status"], winner["version"]) == ("approved", application["version"] + 1)
    assert winner["credit"] == {"points": 2, "months_shortened": 0, "shortened": None}
    assert _ledger_count(committed_app, kind="repair", repair_id=application["id"]) == 1
    standing = _standing(admin, person)
    assert (standing["points_recorded"], standing["points_repaired"], standing["points_total"]) == (4, 2, 2)
    assert admin.get(f"/v1/repairs/{application['id']}") == winner


def test_an_approval_and_a_rejection_at_once_leave_the_winner_s_outcome(committed_app):
    admin, person, application = _institution_approved_repair(committed_app)
    keys = [make_key(_sessions(committed_app), "reviewer") for _ in range(2)]
    bodies = [
        {"decision": decision, "comment": decision, "version": application["version"]}
        for decision in ("approve", "reject")
    ]
    results = _race(committed_app, keys, f"/v1/repairs/{application['id']}/agency-review", bodies)

    _losers_are_409_problems(results)
    [winner] = [b for s, b, _ in results if s == 200]
    credited = 1 if winner["status"] == "approved" else 0
    assert winner["status"] in ("approved", "rejected")
    assert admin.get(f"/v1/repairs/{application['id']}")["status"] == winner["status"]
    assert _ledger_count(committed_app, kind="repair", repair_id=application["id"]) == credited
    standing = _standing(admin, person)
    assert standing["points_repaired"] == 2 * credited


# -- appeals --------------------------------------------------------------------------------------


@pytest.mark.parametrize("reviewers", [2, THREADS])
def test_reviewers_deciding_one_appeal_at_once_reverse_it_exactly_once(committed_app, reviewers):
    admin, person, violation, appeal = _open_appeal(committed_app)
    keys = [make_key(_sessions(committed_app), "reviewer") for _ in range(reviewers)]
    body = {"outcome": "revoked", "reason": "agreed", "version": appeal["version"]}
    results = _race(committed_app, keys, f"/v1/appeals/{appeal['id']}/decision", [body] * reviewers)

    _losers_are_409_problems(results)
    [winner] = [b for s, b, _ in results if s == 200]
    assert (winner["status"], winner["version"]) == ("revoked", appeal["version"] + 1)
    assert _ledger_count(committed_app, kind="reversal", violation_id=violation["id"]) == 1
    assert admin.get(f"/v1/violations/{violation['id']}")["state"] == "revoked"
    standing = _standing(admin, person)
    assert (standing["points_total"], standing["sanctions"]) == (0, [])


def test_reviewers_amending_one_appeal_at_once_write_one_reversal_and_one_amendment(committed_app):
    admin, person, violation, appeal = _open_appeal(committed_app)
    keys = [make_key(_sessions(committed_app), "reviewer") for _ in range(THREADS)]
    bodies = [
        {"outcome": "amended", "points": 4 + i % 3, "reason": f"reviewer {i}", "version": appeal["version"]}
        for i in range(THREADS)
    ]
    results = _race(committed_app, keys, f"/v1/appeals/{appeal['id']}/decision", bodies)

    _losers_are_409_problems(results)
    [winner] = [b for s, b, _ in results if s == 200]
    assert _ledger_count(committed_app, kind="reversal", violation_id=violation["id"]) == 1
    assert _ledger_count(committed_app, kind="decision", violation_id=violation["id"]) == 2
    read = admin.get(f"/v1/violations/{violation['id']}")
    assert (read["state"], read["current_points"]) == ("amended", winner["outcome_points"])
    standing = _standing(admin, person)
    assert standing["points_total"] == winner["outcome_points"]


def test_reviewers_deciding_at_once_without_a_version_get_409_too(committed_app):
    admin, person, violation, appeal = _open_appeal(committed_app)
    keys = [make_key(_sessions(committed_app), "reviewer") for _ in range(THREADS)]
    body = {"outcome": "revoked", "reason": "agreed"}
    results = _race(committed_app, keys, f"/v1/appeals/{appeal['id']}/decision", [body] * THREADS)

    assert _ledger_count(committed_app, kind="reversal", violation_id=violation["id"]) == 1
    _losers_are_409_problems(results)
