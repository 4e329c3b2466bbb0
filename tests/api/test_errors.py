"""Errors are RFC 9457 problem+json, and a refused request writes nothing (docs/api.md Conventions)."""

from __future__ import annotations

from factories import code
from sqlalchemy import func, select

from points_service.persistence.models import LedgerEntry, Violation

PROBLEM = "application/problem+json"
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "request_id"}


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert set(body) >= PROBLEM_KEYS
    assert body["status"] == status
    assert body["instance"] == response.request.path
    return body


def _violation_body(person: str, hospital: str, **over) -> dict:
    return {
        "case_ref": code("CASE-"),
        "practitioner_code": person,
        "institution_code": hospital,
        "behaviour_code": "B2-01",
        "responsibility": "general",
        "occurred_on": "2026-03-02",
        "decided_on": "2026-04-10",
        **over,
    }


def test_malformed_json_is_a_400_problem(client, admin):
    response = client.post(
        "/v1/institutions",
        data='{"code": "H1", "name": ',
        headers={**admin.headers, "Content-Type": "application/json"},
    )
    body = assert_problem(response, 400)
    assert body["type"] == "urn:points-service:problem:malformed-request"
    assert body["detail"] == "the request body is not valid JSON"


def test_an_unknown_field_is_a_422_naming_it(client, admin):
    c = code("H")
    response = client.post(
        "/v1/institutions",
        json={"code": c, "name": "H", "kind": "medical_institution", "region_code": "130100", "owner": "x"},
        headers=admin.headers,
    )
    body = assert_problem(response, 422)
    assert body["errors"] == {"owner": ["Unknown field."]}
    admin.get(f"/v1/institutions/{c}", status=404)


def test_points_given_as_a_string_are_a_422(client, admin, inspector):
    person, hospital = admin.person()
    response = client.post(
        "/v1/violations", json=_violation_body(person, hospital, points="5"), headers=inspector.headers
    )
    body = assert_problem(response, 422)
    assert list(body["errors"]) == ["points"]


def test_a_start_date_given_as_a_number_is_a_422(client, admin):
    hospital, person = admin.institution(), admin.practitioner()
    response = client.post(
        f"/v1/practitioners/{person}/registrations",
        json={"institution_code": hospital, "start_date": 5},
        headers=admin.headers,
    )
    body = assert_problem(response, 422)
    assert list(body["errors"]) == ["start_date"]
    assert admin.get(f"/v1/practitioners/{person}")["registrations"] == []


def test_an_unknown_query_argument_is_a_422(client, admin):
    person, _ = admin.person()
    response = client.get(
        f"/v1/practitioners/{person}/standing", query_string={"yeer": "2026"}, headers=admin.headers
    )
    body = assert_problem(response, 422)
    assert list(body["errors"]) == ["yeer"]


def test_an_unknown_path_is_a_404_problem(client, admin):
    response = client.get("/v1/no-such-thing", headers=admin.headers)
    body = assert_problem(response, 404)
    assert body["type"] == "urn:points-service:problem:not-found"


def test_a_wrong_method_is_a_405_problem_with_allow(client, admin):
    response = client.delete("/v1/institutions", headers=admin.headers)
    body = assert_problem(response, 405)
    assert body["type"] == "urn:points-service:problem:method-not-allowed"
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert "POST" in allowed and "DELETE" not in allowed


def test_reading_an_unknown_practitioner_is_a_404_problem(client, admin):
    missing = code("P")
    response = client.get(f"/v1/practitioners/{missing}", headers=admin.headers)
    body = assert_problem(response, 404)
    assert body["detail"] == f"no practitioner {missing}"


def test_every_problem_carries_a_request_id_and_echoes_the_callers(client, admin):
    generated = assert_problem(client.get("/v1/no-such-thing", headers=admin.headers), 404)
    assert len(generated["request_id"]) == 32
    for response in (
        client.get("/v1/no-such-thing", headers={**admin.headers, "X-Request-ID": "trace-404"}),
        client.get(f"/v1/practitioners/{code('P')}", headers={**admin.headers, "X-Request-ID": "trace-404"}),
        client.post("/v1/institutions", json={}, headers={**admin.headers, "X-Request-ID": "trace-404"}),
        client.get("/v1/policy", headers={"X-Request-ID": "trace-404"}),
    ):
        assert response.status_code >= 400
        assert response.mimetype == PROBLEM
        assert response.get_json()["request_id"] == "trace-404"


def test_a_validation_problem_lists_every_missing_field(client, admin):
    response = client.post("/v1/institutions", json={}, headers=admin.headers)
    body = assert_problem(response, 422)
    assert sorted(body["errors"]) == ["code", "kind", "name", "region_code"]


def test_a_refused_violation_changes_nothing(client, session, admin, inspector):
    person, hospital = admin.person()
    inspector.violation(person, hospital, behaviour_code="B1-01", decided_on="2026-02-01")
    before = admin.get(f"/v1/practitioners/{person}/standing", query={"year": 2026})
    violations = session.scalar(select(func.count()).select_from(Violation))
    entries = session.scalar(select(func.count()).select_from(LedgerEntry))
    for body in (
        _violation_body(person, hospital, points=9),
        _violation_body(person, hospital, decided_on="2099-01-01"),
        _violation_body(person, hospital, occurred_on="2024-06-01"),
        _violation_body(person, hospital, adjustment="aggravated", points=8),
    ):
        assert_problem(client.post("/v1/violations", json=body, headers=inspector.headers), 422)
    assert session.scalar(select(func.count()).select_from(Violation)) == violations
    assert session.scalar(select(func.count()).select_from(LedgerEntry)) == entries
    assert admin.get(f"/v1/practitioners/{person}/standing", query={"year": 2026}) == before
    assert before["points_total"] == 1
