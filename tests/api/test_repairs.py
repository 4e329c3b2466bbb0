"""Point repair through the HTTP API (docs/rules.md §4 rules 19–22; docs/api.md Repairs).

Credits apply on the agency's approval date, which is today (the real clock, Asia/Shanghai), in
today's score year; the decisions below are therefore decided today, so they fall in that year
whatever the date the suite runs on. Every expected date is computed from today by the rules.
"""

from __future__ import annotations

import datetime as dt

import pytest
from factories import Api, approve_repair, make_key
from factories import assert_problem as _problem

from points_service.clock import local_today
from points_service.rules.calendar import add_months


def _decided() -> str:
    """Decisions feeding a repair are decided today: never in the future, always in today's score year."""
    return local_today().isoformat()


def _hr(client, session, institution: str) -> Api:
    return Api(client, make_key(session, "hr_system", institution_code=institution))


def _self(client, session, person: str) -> Api:
    return Api(client, make_key(session, "practitioner", practitioner_code=person))


def _reviewer(client, session) -> Api:
    return Api(client, make_key(session, "reviewer"))


def _application(person: str, institution: str, activity: str = "offline_training", **over) -> dict:
    return {
        "practitioner_code": person,
        "institution_code": institution,
        "activity": activity,
        "completed_on": local_today().isoformat(),  # not in the future (rule 19)
        "evidence_ref": "certificate 0042",
        **over,
    }


def _standing(api: Api, person: str) -> dict:
    return api.get(f"/v1/practitioners/{person}/standing", query={"year": local_today().year})


@pytest.fixture
def case(client, session, admin, inspector):
    """A person with 4 points this year (B2-01 general), their HR system, themselves and a reviewer."""
    person, hospital = admin.person()
    inspector.violation(
        person, hospital, behaviour_code="B2-01", responsibility="general", decided_on=_decided()
    )
    return {
        "person": person,
        "hospital": hospital,
        "hr": _hr(client, session, hospital),
        "self": _self(client, session, person),
        "reviewer": _reviewer(client, session),
    }


# -- the happy path (rules 19, 20) ----------------------------------------------------------------


def test_a_repair_submitted_by_the_person_and_approved_twice_removes_the_points_today(client, admin, case):
    person, hospital = case["person"], case["hospital"]
    response = client.post("/v1/repairs", json=_application(person, hospital), headers=case["self"].headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    submitted = response.get_json()
    assert (submitted["status"], submitted["version"]) == ("submitted", 1)
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"] == f"/v1/repairs/{submitted['id']}"
    assert submitted["practitioner_code"] == person and submitted["institution_code"] == hospital
    assert submitted["activity"] == "offline_training" and submitted["credit"] is None

    reviewed = client.post(
        f"/v1/repairs/{submitted['id']}/institution-review",
        json={"decision": "approve", "comment": "certificate checked", "version": 1},
        headers=case["hr"].headers,
    )
    assert reviewed.status_code == 200, reviewed.get_data(as_text=True)
    institution_approved = reviewed.get_json()
    assert institution_approved["status"] == "institution_approved"
    assert institution_approved["version"] == 2
    assert reviewed.headers["ETag"] == '"2"'
    assert institution_approved["institution_comment"] == "certificate checked"
    assert _standing(admin, person)["points_total"] == 4  # nothing counts before the agency approves

    approved = case["reviewer"].post(
        f"/v1/repairs/{submitted['id']}/agency-review",
        {"decision": "approve", "comment": "ok", "version": 2},
        status=200,
    )
    assert approved["status"] == "approved"
    assert approved["version"] == 3
    assert approved["credit"] == {"points": 2, "months_shortened": 0, "shortened": None}
    assert approved["agency_reviewed_on"] == local_today().isoformat()

    standing = _standing(admin, person)
    assert (standing["points_recorded"], standing["points_repaired"], standing["points_total"]) == (4, 2, 2)
    assert standing["tier"] == "agency_talk"  # repairs do not lower the tier (rule 13)
    assert admin.get(f"/v1/repairs/{submitted['id']}") == approved

    history = admin.get(f"/v1/practitioners/{person}/history")["items"]
    repairs = [i for i in history if i["kind"] == "repair"]
    assert [(r["repair_id"], r["on"], r["points"]) for r in repairs] == [
        (submitted["id"], local_today().isoformat(), -2)
    ]


def test_the_hr_system_may_apply_on_behalf_of_its_staff(admin, case):
    submitted = case["hr"].post("/v1/repairs", _application(case["person"], case["hospital"], "online_study"))
    assert (submitted["status"], submitted["version"]) == ("submitted", 1)
    approved = approve_repair(case["hr"], case["reviewer"], submitted)
    assert approved["credit"] == {"points": 1, "months_shortened": 0, "shortened": None}
    assert _standing(admin, case["person"])["points_total"] == 3


# -- refusals at submission (rules 20, 21) -------------------------------------------------------


def test_a_repair_with_nothing_recorded_this_year_is_refused_with_rule_21(client, session, admin, inspector):
    year = local_today().year
    person, hospital = admin.person()  # registered since 2025-01-01
    last_year = dt.date(year - 1, 6, 1).isoformat()
    inspector.violation(person, hospital, behaviour_code="B2-01", decided_on=last_year)  # last year only
    response = client.post(
        "/v1/repairs", json=_application(person, hospital), headers=_self(client, session, person).headers
    )
    body = _problem(response, 422, "rule-violation")
    assert body["rule"] == "docs/rules.md rule 21"
    assert f"no points recorded in {year}" in body["detail"]
    assert list(body["errors"]) == ["activity"]


def test_a_repair_after_six_points_repaired_this_year_is_refused_with_rule_20(
    client, session, admin, inspector
):
    person, hospital = admin.person()
    inspector.violation(
        person, hospital, behaviour_code="B3-01", responsibility="important", decided_on=_decided()
    )
    hr, reviewer = _hr(client, session, hospital), _reviewer(client, session)
    for _ in range(3):
        assert (
            approve_repair(hr, reviewer, hr.post("/v1/repairs", _application(person, hospital)))["credit"][
                "points"
            ]
            == 2
        )
    standing = _standing(admin, person)
    assert (standing["points_recorded"], standing["points_repaired"], standing["points_total"]) == (8, 6, 2)

    response = client.post(
        "/v1/repairs", json=_application(person, hospital, "online_study"), headers=hr.headers
    )
    body = _problem(response, 422, "rule-violation")
    assert body["rule"] == "docs/rules.md rule 20"
    assert "at most 6 points a year" in body["detail"]
    assert admin.get("/v1/repairs", query={"practitioner_code": person, "status": "submitted"})["items"] == []


def test_a_year_with_a_single_event_of_12_cannot_be_repaired(client, session, admin, inspector):
    person, hospital = admin.person()
    inspector.violation(
        person, hospital, behaviour_code="B4-01", responsibility="main", decided_on=_decided()
    )
    response = client.post(
        "/v1/repairs", json=_application(person, hospital), headers=_self(client, session, person).headers
    )
    body = _problem(response, 422, "rule-violation")
    assert body["rule"] == "docs/rules.md rule 21"
    assert "single-event 12" in body["detail"]


def test_an_unknown_activity_is_a_422_naming_the_field(client, case):
    response = client.post(
        "/v1/repairs",
        json=_application(case["person"], case["hospital"], "volunteering"),
        headers=case["self"].headers,
    )
    body = _problem(response, 422)
    assert list(body["errors"]) == ["activity"]


def test_a_person_may_not_apply_for_someone_else(client, session, admin, case):
    other, _ = admin.person()
    response = client.post(
        "/v1/repairs",
        json=_application(case["person"], case["hospital"]),
        headers=_self(client, session, other).headers,
    )
    _problem(response, 403, "forbidden")


# -- review steps (docs/api.md Repairs) --------------------------------------------------------------


def test_a_review_with_a_stale_version_is_a_409_stale_version(client, admin, case):
    submitted = case["self"].post("/v1/repairs", _application(case["person"], case["hospital"]))
    case["hr"].post(
        f"/v1/repairs/{submitted['id']}/institution-review",
        {"decision": "approve", "comment": None, "version": 1},
        status=200,
    )
    response = client.post(
        f"/v1/repairs/{submitted['id']}/agency-review",
        json={"decision": "approve", "comment": "ok", "version": 1},
        headers=case["reviewer"].headers,
    )
    body = _problem(response, 409, "stale-version")
    assert body["version"] == 2
    assert admin.get(f"/v1/repairs/{submitted['id']}")["status"] == "institution_approved"
    assert _standing(admin, case["person"])["points_repaired"] == 0


def test_an_if_match_that_does_not_match_is_a_412(client, admin, case):
    submitted = case["self"].post("/v1/repairs", _application(case["person"], case["hospital"]))
    response = client.post(
        f"/v1/repairs/{submitted['id']}/institution-review",
        json={"decision": "approve", "comment": None, "version": 1},
        headers={**case["hr"].headers, "If-Match": '"7"'},
    )
    _problem(response, 412, "precondition-failed")
    assert admin.get(f"/v1/repairs/{submitted['id']}")["status"] == "submitted"
    matching = client.post(
        f"/v1/repairs/{submitted['id']}/institution-review",
        json={"decision": "approve", "comment": None, "version": 1},
        headers={**case["hr"].headers, "If-Match": '"1"'},
    )
    assert matching.status_code == 200 and matching.headers["ETag"] == '"2"'


def test_the_agency_may_not_review_before_the_institution(client, admin, case):
    submitted = case["self"].post("/v1/repairs", _application(case["person"], case["hospital"]))
    response = client.post(
        f"/v1/repairs/{submitted['id']}/agency-review",
        json={"decision": "approve", "comment": "ok", "version": 1},
        headers=case["reviewer"].headers,
    )
    _problem(response, 409, "workflow-conflict")
    assert admin.get(f"/v1/repairs/{submitted['id']}")["status"] == "submitted"
    assert _standing(admin, case["person"])["points_total"] == 4


def test_an_application_rejected_by_the_institution_cannot_be_reviewed_again(client, admin, case):
    submitted = case["self"].post("/v1/repairs", _application(case["person"], case["hospital"]))
    rejected = case["hr"].post(
        f"/v1/repairs/{submitted['id']}/institution-review",
        {"decision": "reject", "comment": "no certificate", "version": 1},
        status=200,
    )
    assert (rejected["status"], rejected["version"]) == ("rejected", 2)
    for stage, api in (("institution-review", case["hr"]), ("agency-review", case["reviewer"])):
        response = client.post(
            f"/v1/repairs/{submitted['id']}/{stage}",
            json={"decision": "approve", "comment": None, "version": 2},
            headers=api.headers,
        )
        _problem(response, 409, "workflow-conflict")
    assert _standing(admin, case["person"])["points_total"] == 4


def test_an_approved_application_cannot_be_approved_again(client, admin, case):
    submitted = case["self"].post("/v1/repairs", _application(case["person"], case["hospital"]))
    approved = approve_repair(case["hr"], case["reviewer"], submitted)
    for stage, api in (("agency-review", case["reviewer"]), ("institution-review", case["hr"])):
        response = client.post(
            f"/v1/repairs/{submitted['id']}/{stage}",
            json={"decision": "approve", "comment": None, "version": approved["version"]},
            headers=api.headers,
        )
        _problem(response, 409, "workflow-conflict")
    standing = _standing(admin, case["person"])
    assert (standing["points_repaired"], standing["points_total"]) == (2, 2)


def test_the_hr_system_of_another_institution_sees_no_such_application(client, session, admin, case):
    submitted = case["self"].post("/v1/repairs", _application(case["person"], case["hospital"]))
    stranger = _hr(client, session, admin.institution())
    response = client.post(
        f"/v1/repairs/{submitted['id']}/institution-review",
        json={"decision": "approve", "comment": None, "version": 1},
        headers=stranger.headers,
    )
    _problem(response, 404, "not-found")
    _problem(client.get(f"/v1/repairs/{submitted['id']}", headers=stranger.headers), 404, "not-found")
    assert admin.get(f"/v1/repairs/{submitted['id']}")["status"] == "submitted"


def test_a_practitioner_may_not_review(client, case):
    submitted = case["self"].post("/v1/repairs", _application(case["person"], case["hospital"]))
    for stage in ("institution-review", "agency-review"):
        response = client.post(
            f"/v1/repairs/{submitted['id']}/{stage}",
            json={"decision": "approve", "comment": None, "version": 1},
            headers=case["self"].headers,
        )
        _problem(response, 403, "forbidden")


def test_an_application_rejected_by_the_agency_credits_nothing(admin, case):
    submitted = case["self"].post("/v1/repairs", _application(case["person"], case["hospital"]))
    first = case["hr"].post(
        f"/v1/repairs/{submitted['id']}/institution-review",
        {"decision": "approve", "comment": None, "version": 1},
        status=200,
    )
    rejected = case["reviewer"].post(
        f"/v1/repairs/{submitted['id']}/agency-review",
        {"decision": "reject", "comment": "test not passed", "version": first["version"]},
        status=200,
    )
    assert (rejected["status"], rejected["credit"], rejected["agency_comment"]) == (
        "rejected",
        None,
        "test not passed",
    )
    standing = _standing(admin, case["person"])
    assert (standing["points_recorded"], standing["points_repaired"], standing["points_total"]) == (4, 0, 4)
    history = admin.get(f"/v1/practitioners/{case['person']}/history")["items"]
    assert [i for i in history if i["kind"] == "repair"] == []


# -- shortening a running term (rule 22) --------------------------------------------------------


def test_three_repaired_points_shorten_a_running_suspension_by_one_month(client, session, admin, inspector):
    today = local_today()
    person, hospital = admin.person()
    inspector.violation(
        person, hospital, behaviour_code="B3-01", responsibility="main", decided_on=today.isoformat()
    )
    end = add_months(today, 4)  # a single 9 suspends for 4 months from the decision date (rules 11, 15)
    [suspension] = _standing(admin, person)["sanctions"]
    assert (suspension["start"], suspension["end"], suspension["months"]) == (
        today.isoformat(),
        end.isoformat(),
        4,
    )
    before = admin.get(f"/v1/practitioners/{person}/eligibility")
    assert (before["status"], before["until"]) == ("suspended", end.isoformat())

    hr, reviewer = _hr(client, session, hospital), _reviewer(client, session)
    two = approve_repair(
        hr, reviewer, hr.post("/v1/repairs", _application(person, hospital, "offline_training"))
    )
    assert two["credit"] == {"points": 2, "months_shortened": 0, "shortened": None}
    one = approve_repair(hr, reviewer, hr.post("/v1/repairs", _application(person, hospital, "online_study")))
    assert one["credit"] == {"points": 1, "months_shortened": 1, "shortened": "suspension"}

    # rule 22: one month off the end, never before the approval date (today)
    shortened_end = max(add_months(end, -1), today)
    assert shortened_end > today  # the term is still running after the repair
    standing = _standing(admin, person)
    assert (standing["points_repaired"], standing["points_total"]) == (3, 6)
    [shortened] = standing["sanctions"]
    assert (shortened["start"], shortened["end"], shortened["shortened_by_months"]) == (
        today.isoformat(),
        shortened_end.isoformat(),
        1,
    )
    after = admin.get(f"/v1/practitioners/{person}/eligibility")
    assert (after["eligible"], after["status"], after["until"]) == (
        False,
        "suspended",
        shortened_end.isoformat(),
    )
    assert (
        admin.get(f"/v1/practitioners/{person}/eligibility", query={"at": shortened_end.isoformat()})[
            "eligible"
        ]
        is True
    )
    last_day = shortened_end - dt.timedelta(days=1)
    assert (
        admin.get(f"/v1/practitioners/{person}/eligibility", query={"at": last_day.isoformat()})["eligible"]
        is False
    )


# -- reads ----------------------------------------------------------------------------------------


def test_the_list_filters_by_practitioner_and_status_and_pages(client, session, admin, inspector, case):
    person, hospital = case["person"], case["hospital"]
    ids = [
        case["self"].post("/v1/repairs", _application(person, hospital, "online_study"))["id"]
        for _ in range(3)
    ]
    approve_repair(case["hr"], case["reviewer"], admin.get(f"/v1/repairs/{ids[1]}"))
    # someone else's application at the same hospital does not show under this person
    other = admin.practitioner()
    admin.register(other, hospital)
    inspector.violation(other, hospital, decided_on=_decided())
    case["hr"].post("/v1/repairs", _application(other, hospital, "online_study"))

    submitted = admin.get("/v1/repairs", query={"practitioner_code": person, "status": "submitted"})
    assert [a["id"] for a in submitted["items"]] == [ids[0], ids[2]]
    assert submitted["next_cursor"] is None
    approved = admin.get("/v1/repairs", query={"practitioner_code": person, "status": "approved"})
    assert [(a["id"], a["status"]) for a in approved["items"]] == [(ids[1], "approved")]

    first = admin.get("/v1/repairs", query={"practitioner_code": person, "limit": 1})
    assert [a["id"] for a in first["items"]] == [ids[0]] and first["next_cursor"]
    second = admin.get(
        "/v1/repairs", query={"practitioner_code": person, "limit": 1, "cursor": first["next_cursor"]}
    )
    assert [a["id"] for a in second["items"]] == [ids[1]] and second["next_cursor"]
    third = admin.get(
        "/v1/repairs", query={"practitioner_code": person, "limit": 1, "cursor": second["next_cursor"]}
    )
    assert [a["id"] for a in third["items"]] == [ids[2]] and third["next_cursor"] is None

    # the person sees only their own; the hospital's HR system sees its staff's
    assert [a["id"] for a in case["self"].get("/v1/repairs")["items"]] == ids
    assert len(case["hr"].get("/v1/repairs")["items"]) == 4
    stranger = _hr(client, session, admin.institution())
    assert stranger.get("/v1/repairs", query={"practitioner_code": person})["items"] == []


def test_an_application_is_visible_to_the_person_their_hospital_and_national_roles_only(
    client, session, admin, inspector, case
):
    submitted = case["self"].post("/v1/repairs", _application(case["person"], case["hospital"]))
    path = f"/v1/repairs/{submitted['id']}"
    for api in (case["self"], case["hr"], case["reviewer"], admin, inspector):
        response = client.get(path, headers=api.headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["id"] == submitted["id"]
        assert response.headers["ETag"] == '"1"'
    other, _ = admin.person()
    for stranger in (_hr(client, session, admin.institution()), _self(client, session, other)):
        _problem(client.get(path, headers=stranger.headers), 404, "not-found")
    _problem(client.get("/v1/repairs/987654321", headers=admin.headers), 404, "not-found")
