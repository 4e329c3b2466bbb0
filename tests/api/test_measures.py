"""Measure tasks through the HTTP API (docs/rules.md rule 13; docs/api.md Measures).

Institution talks are the hospital's queue (its HR system); agency talks and public notices are the
insurance agency's (reviewers); an admin sees both. The decisions are made today (the real clock,
Asia/Shanghai) and tasks are completed today: on or after the trigger, never in the future.
"""

from __future__ import annotations

import datetime as dt

import pytest
from factories import Api, make_key
from factories import assert_problem as _problem

from points_service.clock import local_today


def _today() -> str:
    """The decision date of every task below, and the date it is completed or published on."""
    return local_today().isoformat()


@pytest.fixture
def hospital(client, session, admin, inspector):
    """One hospital with three staff: 3 points (institution talk), 4 (agency talk), 7 (public notice)."""
    code = admin.institution()
    people, violations = {}, {}
    for kind, behaviour in (
        ("institution_talk", "B1-99"),
        ("agency_talk", "B2-01"),
        ("public_notice", "B3-01"),
    ):
        person = admin.practitioner()
        admin.register(person, code, "2025-01-01")
        responsibility = "main" if kind == "institution_talk" else "general"
        violations[kind] = inspector.violation(
            person, code, behaviour_code=behaviour, responsibility=responsibility, decided_on=_today()
        )
        assert [t["kind"] for t in violations[kind]["triggered"]] == [kind]
        people[kind] = person
    return {
        "code": code,
        "people": people,
        "violations": violations,
        "hr": Api(client, make_key(session, "hr_system", institution_code=code)),
    }


def _queue(api: Api, **query) -> list[dict]:
    return api.get("/v1/measures", query=query)["items"]


def _measure(admin: Api, hospital: dict, kind: str) -> dict:
    [measure] = [m for m in _queue(admin, institution_code=hospital["code"]) if m["kind"] == kind]
    return measure


# -- who sees which queue ------------------------------------------------------------------------


def test_the_hr_system_sees_its_institution_talks_but_not_the_agency_tasks(hospital):
    items = _queue(hospital["hr"])
    assert [(m["kind"], m["practitioner_code"], m["state"]) for m in items] == [
        ("institution_talk", hospital["people"]["institution_talk"], "pending")
    ]
    [talk] = items
    assert talk["institution_code"] == hospital["code"]
    assert talk["triggered_on"] == _today() and talk["year"] == local_today().year
    assert talk["violation_id"] == hospital["violations"]["institution_talk"]["id"]
    assert _queue(hospital["hr"], institution_code=hospital["code"]) == items


def test_an_hr_system_sees_nothing_of_another_hospital(client, session, admin, hospital):
    stranger = Api(client, make_key(session, "hr_system", institution_code=admin.institution()))
    assert _queue(stranger) == []
    # asking about another institution's queue is asking about another institution: 404
    response = client.get(
        "/v1/measures", query_string={"institution_code": hospital["code"]}, headers=stranger.headers
    )
    _problem(response, 404, "not-found")


def test_the_reviewer_sees_agency_talks_and_notices_but_not_institution_talks(reviewer, hospital):
    items = _queue(reviewer, institution_code=hospital["code"])
    assert [(m["kind"], m["practitioner_code"]) for m in items] == [
        ("agency_talk", hospital["people"]["agency_talk"]),
        ("public_notice", hospital["people"]["public_notice"]),
    ]
    assert "institution_talk" not in {m["kind"] for m in _queue(reviewer, limit=500)}


def test_the_admin_sees_every_task(admin, hospital):
    items = _queue(admin, institution_code=hospital["code"])
    assert [m["kind"] for m in items] == ["institution_talk", "agency_talk", "public_notice"]
    assert all(m["state"] == "pending" for m in items)


def test_a_practitioner_has_no_measure_queue(client, session, hospital):
    person = Api(
        client, make_key(session, "practitioner", practitioner_code=hospital["people"]["agency_talk"])
    )
    _problem(client.get("/v1/measures", headers=person.headers), 403, "forbidden")


def test_the_queue_filters_by_state(admin, hospital):
    talk = _measure(admin, hospital, "institution_talk")
    hospital["hr"].post(f"/v1/measures/{talk['id']}/complete", {"completed_on": _today()}, status=200)
    pending = _queue(admin, institution_code=hospital["code"], state="pending")
    assert [m["kind"] for m in pending] == ["agency_talk", "public_notice"]
    completed = _queue(admin, institution_code=hospital["code"], state="completed")
    assert [(m["id"], m["state"]) for m in completed] == [(talk["id"], "completed")]
    assert _queue(hospital["hr"], state="pending") == []
    assert [m["id"] for m in _queue(hospital["hr"], state="completed")] == [talk["id"]]


def test_the_queue_pages_with_limit_and_cursor(admin, hospital):
    everything = _queue(admin, institution_code=hospital["code"])
    seen, cursor = [], None
    for _ in range(len(everything)):
        query = {"institution_code": hospital["code"], "limit": 1}
        if cursor:
            query["cursor"] = cursor
        page = admin.get("/v1/measures", query=query)
        assert len(page["items"]) == 1
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything and len(seen) == 3
    assert cursor is None


# -- completing and publishing -------------------------------------------------------------------


def test_completing_a_talk_records_the_date_and_the_note(admin, hospital):
    talk = _measure(admin, hospital, "institution_talk")
    today = _today()
    done = hospital["hr"].post(
        f"/v1/measures/{talk['id']}/complete",
        {"completed_on": today, "note": "talk held, training booked"},
        status=200,
    )
    assert {k: done[k] for k in ("id", "kind", "state", "completed_on", "note")} == {
        "id": talk["id"],
        "kind": "institution_talk",
        "state": "completed",
        "completed_on": today,
        "note": "talk held, training booked",
    }
    assert _measure(admin, hospital, "institution_talk") == done
    standing = admin.get(f"/v1/practitioners/{hospital['people']['institution_talk']}/standing")
    assert [(m["kind"], m["state"], m["completed_on"]) for m in standing["measures"]] == [
        ("institution_talk", "completed", today)
    ]


def test_completing_a_task_twice_is_a_409(client, reviewer, admin, hospital):
    talk = _measure(admin, hospital, "agency_talk")
    today = _today()
    reviewer.post(f"/v1/measures/{talk['id']}/complete", {"completed_on": today, "note": "a"}, status=200)
    response = client.post(
        f"/v1/measures/{talk['id']}/complete",
        json={"completed_on": today, "note": "b"},
        headers=reviewer.headers,
    )
    _problem(response, 409, "workflow-conflict")
    after = _measure(admin, hospital, "agency_talk")
    assert (after["completed_on"], after["note"]) == (today, "a")


def test_a_completion_date_in_the_future_is_a_422(client, admin, hospital):
    talk = _measure(admin, hospital, "institution_talk")
    tomorrow = (local_today() + dt.timedelta(days=1)).isoformat()
    response = client.post(
        f"/v1/measures/{talk['id']}/complete", json={"completed_on": tomorrow}, headers=hospital["hr"].headers
    )
    body = _problem(response, 422, "rule-violation")
    assert list(body["errors"]) == ["completed_on"]
    assert _measure(admin, hospital, "institution_talk")["state"] == "pending"


def test_a_completion_date_before_the_trigger_is_a_422(client, admin, hospital):
    talk = _measure(admin, hospital, "institution_talk")
    day_before = (local_today() - dt.timedelta(days=1)).isoformat()  # triggered today
    response = client.post(
        f"/v1/measures/{talk['id']}/complete",
        json={"completed_on": day_before},
        headers=hospital["hr"].headers,
    )
    body = _problem(response, 422, "rule-violation")
    assert list(body["errors"]) == ["completed_on"]
    assert _measure(admin, hospital, "institution_talk")["state"] == "pending"
    # the trigger day itself is allowed
    done = hospital["hr"].post(f"/v1/measures/{talk['id']}/complete", {"completed_on": _today()}, status=200)
    assert done["completed_on"] == talk["triggered_on"] == _today()


def test_the_hr_system_cannot_complete_an_agency_task(client, reviewer, admin, hospital):
    for kind in ("agency_talk", "public_notice"):
        task = _measure(admin, hospital, kind)
        response = client.post(
            f"/v1/measures/{task['id']}/complete",
            json={"completed_on": _today()},
            headers=hospital["hr"].headers,
        )
        _problem(response, 404, "not-found")
        assert _measure(admin, hospital, kind)["state"] == "pending"
    # nor the agency the hospital's talk
    talk = _measure(admin, hospital, "institution_talk")
    response = client.post(
        f"/v1/measures/{talk['id']}/complete", json={"completed_on": _today()}, headers=reviewer.headers
    )
    _problem(response, 404, "not-found")


def test_a_public_notice_is_published(reviewer, admin, hospital):
    notice = _measure(admin, hospital, "public_notice")
    today = _today()
    published = reviewer.post(
        f"/v1/measures/{notice['id']}/publish",
        {"published_on": today, "note": "on the agency website"},
        status=200,
    )
    assert (published["state"], published["published_on"], published["note"]) == (
        "published",
        today,
        "on the agency website",
    )
    assert _measure(admin, hospital, "public_notice")["state"] == "published"
    assert [m["id"] for m in _queue(reviewer, institution_code=hospital["code"], state="published")] == [
        notice["id"]
    ]


def test_only_a_public_notice_can_be_published(client, reviewer, admin, hospital):
    talk = _measure(admin, hospital, "agency_talk")
    response = client.post(
        f"/v1/measures/{talk['id']}/publish", json={"published_on": _today()}, headers=reviewer.headers
    )
    _problem(response, 409, "workflow-conflict")
    assert _measure(admin, hospital, "agency_talk")["state"] == "pending"


def test_a_cancelled_task_cannot_be_completed(client, session, admin, inspector, reviewer):
    person, code = admin.person()
    # decided today, so the appeal is inside the window (rule 23)
    violation = inspector.violation(
        person, code, behaviour_code="B1-01", responsibility="main", decided_on=_today()
    )
    own = Api(client, make_key(session, "practitioner", practitioner_code=person))
    appeal = own.post(f"/v1/violations/{violation['id']}/appeals", {"reason": "not me"})
    reviewer.post(
        f"/v1/appeals/{appeal['id']}/decision", {"outcome": "revoked", "reason": "agreed"}, status=200
    )
    [talk] = _queue(admin, institution_code=code)
    assert talk["state"] == "cancelled"
    hr = Api(client, make_key(session, "hr_system", institution_code=code))
    response = client.post(
        f"/v1/measures/{talk['id']}/complete", json={"completed_on": _today()}, headers=hr.headers
    )
    _problem(response, 409, "workflow-conflict")
    assert _queue(admin, institution_code=code)[0]["state"] == "cancelled"
