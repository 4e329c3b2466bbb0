"""Registry through the HTTP API: institutions, practitioners, registrations (docs/rules.md §1, rule 17)."""

from __future__ import annotations

import pytest
from factories import code, new_id_number

from points_service.rules.identifiers import with_check_character

PROBLEM = "application/problem+json"


def _institution_body(c: str, **over) -> dict:
    return {
        "code": c,
        "name": f"Hospital {c}",
        "kind": "medical_institution",
        "region_code": "130100",
        **over,
    }


def _practitioner_body(c: str, id_number: str, **over) -> dict:
    return {"code": c, "name": f"Person {c}", "id_number": id_number, "category": "physician", **over}


def _registration(person: dict, institution_code: str) -> dict:
    (found,) = [r for r in person["registrations"] if r["institution_code"] == institution_code]
    return found


def _terminate(admin, inspector, *, decided_on="2026-03-01") -> tuple[str, str, dict]:
    """A person registered at a hospital since 2025-01-01 and terminated by a single 12-point event."""
    person, hospital = admin.person()
    recorded = inspector.violation(
        person, hospital, behaviour_code="B4-01", responsibility="main", decided_on=decided_on
    )
    assert recorded["points"] == 12
    return person, hospital, recorded


# -- institutions ---------------------------------------------------------------------------------


def test_creating_an_institution_returns_201_with_location_and_province(client, admin):
    c = code("H")
    response = client.post(
        "/v1/institutions", json=_institution_body(c, region_code="630102"), headers=admin.headers
    )
    assert response.status_code == 201
    assert response.headers["Location"] == f"/v1/institutions/{c}"
    body = response.get_json()
    assert {k: body[k] for k in ("code", "name", "kind", "region_code", "province")} == {
        "code": c,
        "name": f"Hospital {c}",
        "kind": "medical_institution",
        "region_code": "630102",
        "province": "63",
    }
    assert admin.get(f"/v1/institutions/{c}")["province"] == "63"


def test_posting_the_same_institution_again_returns_200_with_the_same_record(admin):
    c = code("H")
    first = admin.post("/v1/institutions", _institution_body(c), status=201)
    again = admin.post("/v1/institutions", _institution_body(c), status=200)
    assert again == first


def test_posting_an_institution_code_with_different_data_is_a_409_problem(client, admin):
    c = code("H")
    admin.post("/v1/institutions", _institution_body(c), status=201)
    response = client.post(
        "/v1/institutions", json=_institution_body(c, name="Another name"), headers=admin.headers
    )
    assert response.status_code == 409
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == 409
    assert body["type"] == "urn:points-service:problem:duplicate-institution"
    assert admin.get(f"/v1/institutions/{c}")["name"] == f"Hospital {c}"


# -- practitioners --------------------------------------------------------------------------------


def test_creating_a_practitioner_masks_the_national_id_everywhere_in_the_response(client, admin):
    c, id_number = code("P"), new_id_number()
    response = client.post("/v1/practitioners", json=_practitioner_body(c, id_number), headers=admin.headers)
    assert response.status_code == 201
    assert response.headers["Location"] == f"/v1/practitioners/{c}"
    body = response.get_json()
    assert body["id_number"] == id_number[0] + "*" * 16 + id_number[-1]
    assert body["code"] == c and body["category"] == "physician" and body["registrations"] == []
    assert id_number not in response.get_data(as_text=True)
    read = client.get(f"/v1/practitioners/{c}", headers=admin.headers)
    assert id_number not in read.get_data(as_text=True)
    assert read.get_json()["id_number"] == body["id_number"]


def test_posting_the_same_practitioner_again_returns_200(admin):
    c, id_number = code("P"), new_id_number()
    first = admin.post("/v1/practitioners", _practitioner_body(c, id_number), status=201)
    again = admin.post("/v1/practitioners", _practitioner_body(c, id_number), status=200)
    assert again == first


def test_a_practitioner_code_with_different_data_is_a_409(admin):
    c, id_number = code("P"), new_id_number()
    admin.post("/v1/practitioners", _practitioner_body(c, id_number), status=201)
    body = admin.post("/v1/practitioners", _practitioner_body(c, id_number, category="nurse"), status=409)
    assert body["type"] == "urn:points-service:problem:duplicate-practitioner"
    other_id = admin.post("/v1/practitioners", _practitioner_body(c, new_id_number()), status=409)
    assert other_id["status"] == 409
    assert admin.get(f"/v1/practitioners/{c}")["category"] == "physician"


def test_the_same_national_id_under_another_code_is_a_409_that_does_not_echo_the_number(client, admin):
    id_number = new_id_number()
    admin.post("/v1/practitioners", _practitioner_body(code("P"), id_number), status=201)
    other = code("P")
    response = client.post(
        "/v1/practitioners", json=_practitioner_body(other, id_number), headers=admin.headers
    )
    assert response.status_code == 409
    assert response.mimetype == PROBLEM
    assert response.get_json()["type"] == "urn:points-service:problem:duplicate-practitioner"
    assert id_number not in response.get_data(as_text=True)
    admin.get(f"/v1/practitioners/{other}", status=404)


def test_a_national_id_with_a_wrong_check_digit_is_a_422_naming_id_number(client, admin):
    valid = with_check_character("13010219800101123")
    wrong = valid[:17] + ("0" if valid[17] != "0" else "1")
    c = code("P")
    response = client.post("/v1/practitioners", json=_practitioner_body(c, wrong), headers=admin.headers)
    assert response.status_code == 422
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert list(body["errors"]) == ["id_number"]
    assert body["errors"]["id_number"] == ["national ID: check digit does not match (GB 11643 MOD 11-2)"]
    assert wrong not in response.get_data(as_text=True)
    admin.get(f"/v1/practitioners/{c}", status=404)


def test_reading_a_practitioner_lists_their_registrations(admin):
    first, second = admin.institution(), admin.institution()
    person = admin.practitioner()
    admin.register(person, first, "2025-01-01")
    admin.register(person, second, "2026-02-01")
    body = admin.get(f"/v1/practitioners/{person}")
    assert body["code"] == person
    assert [
        (r["institution_code"], r["start_date"], r["end_date"], r["ended_by"], r["active"])
        for r in body["registrations"]
    ] == [(first, "2025-01-01", None, None, True), (second, "2026-02-01", None, None, True)]


# -- registrations --------------------------------------------------------------------------------


def test_creating_a_registration_returns_201_and_the_same_again_200(client, admin):
    hospital, person = admin.institution(), admin.practitioner()
    body = {"institution_code": hospital, "start_date": "2025-03-01"}
    response = client.post(f"/v1/practitioners/{person}/registrations", json=body, headers=admin.headers)
    assert response.status_code == 201
    assert response.headers["Location"] == f"/v1/practitioners/{person}"
    created = response.get_json()
    assert {k: v for k, v in created.items() if k != "id"} == {
        "institution_code": hospital,
        "start_date": "2025-03-01",
        "end_date": None,
        "ended_by": None,
        "end_reason": None,
        "active": True,
        "practitioner_code": person,
    }
    again = admin.post(f"/v1/practitioners/{person}/registrations", body, status=200)
    assert again == created
    assert len(admin.get(f"/v1/practitioners/{person}")["registrations"]) == 1


def test_an_overlapping_registration_at_the_same_institution_is_a_409(admin):
    hospital, person = admin.institution(), admin.practitioner()
    admin.register(person, hospital, "2025-01-01")
    body = admin.register(person, hospital, "2025-06-01", status=409)
    assert body["type"] == "urn:points-service:problem:registration-conflict"
    assert len(admin.get(f"/v1/practitioners/{person}")["registrations"]) == 1


def test_a_person_may_be_registered_at_two_institutions_at_once(admin):
    first, second = admin.institution(), admin.institution(kind="retail_pharmacy")
    person = admin.practitioner()
    admin.register(person, first, "2025-01-01")
    admin.register(person, second, "2025-01-01", status=201)
    for hospital in (first, second):
        eligibility = admin.get(
            f"/v1/practitioners/{person}/eligibility",
            query={"at": "2026-05-01", "institution_code": hospital},
        )
        assert (eligibility["eligible"], eligibility["status"]) == (True, "active")


def test_ending_a_registration_makes_the_end_date_the_first_day_not_registered(admin):
    person, hospital = admin.person(start="2025-01-01")
    ended = admin.post(
        f"/v1/practitioners/{person}/registrations/{hospital}/end",
        {"end_date": "2026-06-01", "reason": "left the hospital"},
        status=200,
    )
    assert (ended["end_date"], ended["ended_by"], ended["end_reason"], ended["active"]) == (
        "2026-06-01",
        "registry",
        "left the hospital",
        False,
    )
    path = f"/v1/practitioners/{person}/eligibility"
    last_day = admin.get(path, query={"at": "2026-05-31", "institution_code": hospital})
    assert (last_day["eligible"], last_day["status"]) == (True, "active")
    assert last_day["until"] == "2026-06-01"
    on_end = admin.get(path, query={"at": "2026-06-01", "institution_code": hospital})
    assert (on_end["eligible"], on_end["status"]) == (False, "not_registered")
    assert _registration(admin.get(f"/v1/practitioners/{person}"), hospital)["end_date"] == "2026-06-01"


@pytest.mark.parametrize("end_date", ["2025-01-01", "2024-12-31"])
def test_an_end_date_on_or_before_the_start_date_is_a_422(admin, end_date):
    person, hospital = admin.person(start="2025-01-01")
    body = admin.post(
        f"/v1/practitioners/{person}/registrations/{hospital}/end",
        {"end_date": end_date, "reason": "mistake"},
        status=422,
    )
    assert list(body["errors"]) == ["end_date"]
    assert _registration(admin.get(f"/v1/practitioners/{person}"), hospital)["end_date"] is None


def test_ending_a_registration_when_none_is_open_is_a_404(admin):
    hospital, person = admin.institution(), admin.practitioner()
    body = admin.post(
        f"/v1/practitioners/{person}/registrations/{hospital}/end",
        {"end_date": "2026-06-01", "reason": "left"},
        status=404,
    )
    assert body["status"] == 404
    admin.register(person, hospital, "2025-01-01")
    admin.post(
        f"/v1/practitioners/{person}/registrations/{hospital}/end",
        {"end_date": "2026-06-01", "reason": "left"},
        status=200,
    )
    admin.post(
        f"/v1/practitioners/{person}/registrations/{hospital}/end",
        {"end_date": "2026-07-01", "reason": "again"},
        status=404,
    )


# -- termination and the re-registration bar (rule 17) --------------------------------------------


def test_registering_while_a_reregistration_bar_runs_is_a_409_with_barred_until(client, admin, inspector):
    person, _, recorded = _terminate(admin, inspector, decided_on="2026-03-01")
    (termination,) = recorded["triggered"]
    assert (termination["kind"], termination["barred_until"], termination["bar_years"]) == (
        "termination",
        "2029-03-01",
        3,
    )
    elsewhere = admin.institution()
    response = client.post(
        f"/v1/practitioners/{person}/registrations",
        json={"institution_code": elsewhere, "start_date": "2027-01-01"},
        headers=admin.headers,
    )
    assert response.status_code == 409
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["barred_until"] == "2029-03-01"
    assert body["type"] == "urn:points-service:problem:reregistration-barred"
    admin.register(person, elsewhere, "2029-02-28", status=409)
    created = admin.register(person, elsewhere, "2029-03-01", status=201)
    assert (created["institution_code"], created["start_date"], created["end_date"]) == (
        elsewhere,
        "2029-03-01",
        None,
    )
    future = admin.get(
        f"/v1/practitioners/{person}/eligibility", query={"at": "2029-03-01", "institution_code": elsewhere}
    )
    assert (future["eligible"], future["status"]) == (True, "active")


def test_after_the_bar_the_person_may_register_again_at_the_same_institution(admin, inspector):
    person, hospital, _ = _terminate(admin, inspector, decided_on="2026-03-01")
    created = admin.register(person, hospital, "2029-03-01", status=201)
    assert (created["institution_code"], created["start_date"]) == (hospital, "2029-03-01")


def test_a_termination_ends_every_open_registration_on_the_decision_date(admin, inspector):
    person, first = admin.person(start="2025-01-01")
    second = admin.institution()
    admin.register(person, second, "2025-06-01")
    inspector.violation(person, first, behaviour_code="B4-01", responsibility="main", decided_on="2026-03-01")
    body = admin.get(f"/v1/practitioners/{person}")
    assert [
        (r["institution_code"], r["end_date"], r["ended_by"], r["active"]) for r in body["registrations"]
    ] == [
        (first, "2026-03-01", "termination", False),
        (second, "2026-03-01", "termination", False),
    ]
    on_day = admin.get(f"/v1/practitioners/{person}/eligibility", query={"at": "2026-03-01"})
    assert (on_day["eligible"], on_day["status"], on_day["barred_until"]) == (
        False,
        "terminated",
        "2029-03-01",
    )
    day_before = admin.get(f"/v1/practitioners/{person}/eligibility", query={"at": "2026-02-28"})
    assert (day_before["eligible"], day_before["status"]) == (True, "active")
