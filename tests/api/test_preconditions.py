"""Optimistic locking over HTTP (docs/api.md Versions, ETag and If-Match): a review names the
version it saw by `If-Match`, by `version` in the body, or both; a repair review with neither is
428 and changes nothing; an appeal decision may name none (the contract never asked it to)."""

from __future__ import annotations

import pytest
from factories import Api, make_key
from factories import assert_problem as _problem

from points_service.clock import local_today


@pytest.fixture
def repair(client, session, admin, inspector):
    """A submitted repair application of a person with 4 points today, and who reviews it."""
    person, hospital = admin.person()
    today = local_today().isoformat()
    inspector.violation(person, hospital, behaviour_code="B2-01", responsibility="general", decided_on=today)
    applicant = Api(client, make_key(session, "practitioner", practitioner_code=person))
    application = applicant.post(
        "/v1/repairs",
        {
            "practitioner_code": person,
            "institution_code": hospital,
            "activity": "offline_training",
            "completed_on": today,
            "evidence_ref": "certificate 0042",
        },
    )
    return {
        "id": application["id"],
        "hr": Api(client, make_key(session, "hr_system", institution_code=hospital)),
        "reviewer": Api(client, make_key(session, "reviewer")),
    }


def _review(client, api: Api, repair_id: int, stage: str, body: dict, **headers):
    return client.post(
        f"/v1/repairs/{repair_id}/{stage}-review",
        json={"decision": "approve", "comment": "checked", **body},
        headers={**api.headers, **headers},
    )


def test_a_review_with_if_match_alone_is_accepted_and_answers_the_new_etag(client, admin, repair):
    etag = client.get(f"/v1/repairs/{repair['id']}", headers=admin.headers).headers["ETag"]
    assert etag == '"1"'
    first = _review(client, repair["hr"], repair["id"], "institution", {}, **{"If-Match": etag})
    assert first.status_code == 200, first.get_data(as_text=True)
    assert (first.get_json()["status"], first.headers["ETag"]) == ("institution_approved", '"2"')
    second = _review(client, repair["reviewer"], repair["id"], "agency", {}, **{"If-Match": 'W/"2"'})
    assert second.status_code == 200, second.get_data(as_text=True)
    assert second.get_json()["status"] == "approved"


def test_a_review_with_neither_if_match_nor_a_version_is_428_and_changes_nothing(client, admin, repair):
    response = _review(client, repair["hr"], repair["id"], "institution", {})
    body = _problem(response, 428, "precondition-required")
    assert "If-Match" in body["detail"] and "version" in body["detail"]
    assert admin.get(f"/v1/repairs/{repair['id']}")["version"] == 1
    explicit_null = _review(client, repair["hr"], repair["id"], "institution", {"version": None})
    assert list(_problem(explicit_null, 422, "validation-error")["errors"]) == ["version"]
    assert admin.get(f"/v1/repairs/{repair['id']}")["status"] == "submitted"


def test_a_stale_if_match_without_a_version_is_412_and_changes_nothing(client, admin, repair):
    response = _review(client, repair["hr"], repair["id"], "institution", {}, **{"If-Match": '"5"'})
    assert _problem(response, 412, "precondition-failed")["version"] == 1
    assert admin.get(f"/v1/repairs/{repair['id']}")["status"] == "submitted"


def test_a_version_in_the_body_alone_still_works_and_a_stale_one_is_409(client, admin, repair):
    stale = _review(client, repair["hr"], repair["id"], "institution", {"version": 3})
    _problem(stale, 409, "stale-version")
    fresh = _review(client, repair["hr"], repair["id"], "institution", {"version": 1})
    assert fresh.status_code == 200 and fresh.headers["ETag"] == '"2"'


def test_an_if_match_that_is_not_an_etag_of_ours_is_a_422_at_the_header(client, admin, repair):
    response = _review(client, repair["hr"], repair["id"], "institution", {}, **{"If-Match": "*"})
    assert list(_problem(response, 422, "rule-violation")["errors"]) == ["If-Match"]


def test_an_appeal_decision_takes_if_match_and_refuses_a_stale_one(client, session, admin, inspector):
    person, hospital = admin.person()
    violation = inspector.violation(person, hospital, decided_on=local_today().isoformat())
    person_api = Api(client, make_key(session, "practitioner", practitioner_code=person))
    appeal = person_api.post(f"/v1/violations/{violation['id']}/appeals", {"reason": "I was on leave"})
    reviewer = Api(client, make_key(session, "reviewer"))
    decision = {"outcome": "upheld", "reason": "the file holds"}
    stale = client.post(
        f"/v1/appeals/{appeal['id']}/decision", json=decision, headers={**reviewer.headers, "If-Match": '"9"'}
    )
    _problem(stale, 412, "precondition-failed")
    assert admin.get(f"/v1/appeals/{appeal['id']}")["status"] == "open"
    etag = client.get(f"/v1/appeals/{appeal['id']}", headers=admin.headers).headers["ETag"]
    decided = client.post(
        f"/v1/appeals/{appeal['id']}/decision", json=decision, headers={**reviewer.headers, "If-Match": etag}
    )
    assert decided.status_code == 200, decided.get_data(as_text=True)
    assert decided.get_json()["status"] == "upheld"
