"""Scoring decisions through the HTTP API (docs/rules.md §2, §3, §6; docs/api.md Violations)."""

from __future__ import annotations

import pytest
from factories import code

PROBLEM = "application/problem+json"


def _body(person: str, hospital: str, **over) -> dict:
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


def _standing(api, person: str, year: int = 2026) -> dict:
    return api.get(f"/v1/practitioners/{person}/standing", query={"year": year})


# -- points (rules 7 and 8) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour_code", "responsibility", "points"),
    [
        ("B1-01", "general", 1),
        ("B1-02", "important", 2),
        ("B1-99", "main", 3),
        ("B2-01", "general", 4),
        ("B2-02", "important", 5),
        ("B2-99", "main", 6),
        ("B3-01", "general", 7),
        ("B3-02", "important", 8),
        ("B3-99", "main", 9),
        ("B4-01", "general", 10),
        ("B4-02", "important", 11),
        ("B4-99", "main", 12),
    ],
)
def test_default_points_follow_the_band_and_the_responsibility(
    admin, inspector, behaviour_code, responsibility, points
):
    person, hospital = admin.person()
    recorded = inspector.violation(
        person, hospital, behaviour_code=behaviour_code, responsibility=responsibility
    )
    assert (recorded["points"], recorded["standing"]["points_total"]) == (points, points)


@pytest.mark.parametrize("points", [4, 6])
def test_explicit_points_inside_the_band_are_recorded(admin, inspector, points):
    person, hospital = admin.person()
    recorded = inspector.violation(
        person, hospital, behaviour_code="B2-01", responsibility="main", points=points
    )
    assert recorded["points"] == points
    assert _standing(admin, person)["points_total"] == points


@pytest.mark.parametrize("points", [3, 7])
def test_explicit_points_outside_the_band_are_a_422_naming_points(client, admin, inspector, points):
    person, hospital = admin.person()
    response = client.post(
        "/v1/violations", json=_body(person, hospital, points=points), headers=inspector.headers
    )
    assert response.status_code == 422
    assert response.mimetype == PROBLEM
    assert list(response.get_json()["errors"]) == ["points"]
    assert _standing(admin, person)["points_total"] == 0


@pytest.mark.parametrize(("adjustment", "points"), [("mitigated", 2), ("aggravated", 8)])
def test_an_adjusted_decision_with_a_reason_may_use_the_neighbouring_band(
    admin, inspector, adjustment, points
):
    person, hospital = admin.person()
    recorded = inspector.violation(
        person,
        hospital,
        behaviour_code="B2-01",
        points=points,
        adjustment=adjustment,
        adjustment_reason="confessed and repaid" if adjustment == "mitigated" else "refused to cooperate",
    )
    assert (recorded["points"], recorded["adjustment"]) == (points, adjustment)
    assert recorded["adjustment_reason"] in ("confessed and repaid", "refused to cooperate")


def test_a_mitigated_decision_outside_the_lower_band_is_a_422(admin, inspector):
    person, hospital = admin.person()
    body = inspector.post(
        "/v1/violations",
        _body(person, hospital, points=4, adjustment="mitigated", adjustment_reason="confessed"),
        status=422,
    )
    assert list(body["errors"]) == ["points"]


def test_an_adjustment_without_a_reason_is_a_422(admin, inspector):
    person, hospital = admin.person()
    body = inspector.post(
        "/v1/violations", _body(person, hospital, points=2, adjustment="mitigated"), status=422
    )
    assert list(body["errors"]) == ["adjustment_reason"]
    assert _standing(admin, person)["points_total"] == 0


def test_an_unknown_behaviour_code_is_a_422(admin, inspector):
    person, hospital = admin.person()
    body = inspector.post("/v1/violations", _body(person, hospital, behaviour_code="B9-01"), status=422)
    assert list(body["errors"]) == ["behaviour_code"]


# -- dates and registration (rules 4 and 6) --------------------------------------------------------


def test_a_decision_dated_in_the_future_is_a_422(admin, inspector):
    person, hospital = admin.person()
    body = inspector.post(
        "/v1/violations",
        _body(person, hospital, occurred_on="2026-03-02", decided_on="2099-01-01"),
        status=422,
    )
    assert list(body["errors"]) == ["decided_on"]


def test_conduct_after_the_decision_is_a_422(admin, inspector):
    person, hospital = admin.person()
    body = inspector.post(
        "/v1/violations",
        _body(person, hospital, occurred_on="2026-04-11", decided_on="2026-04-10"),
        status=422,
    )
    assert list(body["errors"]) == ["occurred_on"]


def test_a_person_not_registered_at_the_institution_when_it_happened_is_a_422(admin, inspector):
    person, hospital = admin.person(start="2026-03-03")
    body = inspector.post(
        "/v1/violations",
        _body(person, hospital, occurred_on="2026-03-02", decided_on="2026-04-10"),
        status=422,
    )
    assert list(body["errors"]) == ["occurred_on"]
    elsewhere = admin.institution()
    body = inspector.post(
        "/v1/violations",
        _body(person, elsewhere, occurred_on="2026-04-01", decided_on="2026-04-10"),
        status=422,
    )
    assert list(body["errors"]) == ["occurred_on"]
    assert _standing(admin, person)["points_total"] == 0


def test_an_unknown_practitioner_is_a_422(admin, inspector):
    hospital = admin.institution()
    body = inspector.post("/v1/violations", _body(code("P"), hospital), status=422)
    assert list(body["errors"]) == ["practitioner_code"]


def test_an_unknown_institution_is_a_422(admin, inspector):
    person, _ = admin.person()
    body = inspector.post("/v1/violations", _body(person, code("H")), status=422)
    assert list(body["errors"]) == ["institution_code"]


# -- counted once: case_ref and Idempotency-Key -----------------------------------------------------


def test_posting_the_same_case_twice_counts_it_once(client, admin, inspector):
    person, hospital = admin.person()
    body = _body(person, hospital)
    first = client.post("/v1/violations", json=body, headers=inspector.headers)
    assert first.status_code == 201
    assert first.headers["Location"] == f"/v1/violations/{first.get_json()['id']}"
    again = client.post("/v1/violations", json=body, headers=inspector.headers)
    assert again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.get_json()["points"] == 4
    assert again.get_json()["standing"]["points_total"] == 4
    standing = _standing(admin, person)
    assert (standing["points_total"], standing["points_recorded"]) == (4, 4)
    assert [m["kind"] for m in standing["measures"]] == ["agency_talk"]


def test_the_same_case_ref_with_different_content_is_a_409_naming_the_violation(client, admin, inspector):
    person, hospital = admin.person()
    body = _body(person, hospital)
    first = inspector.post("/v1/violations", body, status=201)
    response = client.post(
        "/v1/violations", json={**body, "responsibility": "main"}, headers=inspector.headers
    )
    assert response.status_code == 409
    assert response.mimetype == PROBLEM
    problem = response.get_json()
    assert problem["violation_id"] == first["id"]
    assert problem["type"] == "urn:points-service:problem:duplicate-case"
    assert _standing(admin, person)["points_total"] == 4


def test_an_idempotency_key_replays_the_first_response_and_counts_once(client, admin, inspector):
    person, hospital = admin.person()
    body = _body(person, hospital)
    headers = {**inspector.headers, "Idempotency-Key": code("idem-")}
    first = client.post("/v1/violations", json=body, headers=headers)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    again = client.post("/v1/violations", json=body, headers=headers)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert again.get_json() == first.get_json()
    assert _standing(admin, person)["points_total"] == 4


def test_an_idempotency_key_reused_for_a_different_body_is_a_422(client, admin, inspector):
    person, hospital = admin.person()
    headers = {**inspector.headers, "Idempotency-Key": code("idem-")}
    first = client.post("/v1/violations", json=_body(person, hospital), headers=headers)
    assert first.status_code == 201
    response = client.post("/v1/violations", json=_body(person, hospital), headers=headers)
    assert response.status_code == 422
    assert response.mimetype == PROBLEM
    assert response.get_json()["type"] == "urn:points-service:problem:idempotency-key-reused"
    assert _standing(admin, person)["points_total"] == 4


def test_reading_a_violation_shows_it_in_force(admin, inspector):
    person, hospital = admin.person()
    recorded = inspector.violation(
        person,
        hospital,
        behaviour_code="B2-02",
        responsibility="important",
        occurred_on="2026-03-02",
        decided_on="2026-04-10",
        description="practised outside scope",
        evidence_refs=["doc-1", "doc-2"],
    )
    read = inspector.get(f"/v1/violations/{recorded['id']}")
    assert {k: v for k, v in read.items() if k != "created_at"} == {
        "id": recorded["id"],
        "case_ref": recorded["case_ref"],
        "practitioner_code": person,
        "institution_code": hospital,
        "behaviour_code": "B2-02",
        "responsibility": "important",
        "adjustment": None,
        "adjustment_reason": None,
        "points": 5,
        "occurred_on": "2026-03-02",
        "decided_on": "2026-04-10",
        "score_year": 2026,
        "profile": "hebei-2025",
        "description": "practised outside scope",
        "evidence_refs": ["doc-1", "doc-2"],
        "state": "effective",
        "current_points": 5,
    }
    assert read["created_at"] == recorded["created_at"]
    inspector.get("/v1/violations/999999999", status=404)


# -- profiles, years and outcomes -----------------------------------------------------------------


def test_an_institution_in_qinghai_uses_the_qinghai_profile(admin, inspector):
    person, hospital = admin.person(region_code="630100")
    talk = inspector.violation(person, hospital, behaviour_code="B2-01", responsibility="main")
    assert (talk["profile"], talk["points"]) == ("qinghai-2025", 6)
    assert [(t["type"], t["kind"]) for t in talk["triggered"]] == [("measure", "institution_talk")]
    assert talk["standing"]["tier"] == "institution_talk"

    other, hospital2 = admin.person(region_code="630100")
    single = inspector.violation(
        other, hospital2, behaviour_code="B3-01", responsibility="main", decided_on="2026-05-10"
    )
    assert (single["profile"], single["points"]) == ("qinghai-2025", 9)
    (sanction,) = single["triggered"]
    assert {k: sanction[k] for k in ("type", "kind", "start", "end", "months")} == {
        "type": "sanction",
        "kind": "suspension",
        "start": "2026-05-10",
        "end": "2026-08-10",
        "months": 3,
    }


def test_a_hebei_institution_uses_the_default_profile_where_six_points_is_an_agency_talk(admin, inspector):
    person, hospital = admin.person(region_code="130100")
    recorded = inspector.violation(person, hospital, behaviour_code="B2-01", responsibility="main")
    assert recorded["profile"] == "hebei-2025"
    assert [(t["type"], t["kind"]) for t in recorded["triggered"]] == [("measure", "agency_talk")]


def test_the_decision_date_decides_the_score_year(admin, inspector):
    person, hospital = admin.person(start="2025-01-01")
    late = inspector.violation(
        person,
        hospital,
        behaviour_code="B1-01",
        responsibility="important",
        occurred_on="2025-12-01",
        decided_on="2025-12-31",
    )
    early = inspector.violation(
        person,
        hospital,
        behaviour_code="B1-01",
        responsibility="general",
        occurred_on="2025-12-01",
        decided_on="2026-01-01",
    )
    assert (late["score_year"], early["score_year"]) == (2025, 2026)
    y2025, y2026 = _standing(admin, person, 2025), _standing(admin, person, 2026)
    assert (y2025["year"], y2025["points_total"]) == (2025, 2)
    assert (y2026["year"], y2026["points_total"]) == (2026, 1)


def test_the_more_severe_of_the_cumulative_and_single_event_rules_applies(admin, inspector):
    person, hospital = admin.person()
    inspector.violation(
        person, hospital, behaviour_code="B1-01", responsibility="main", decided_on="2026-02-01"
    )
    second = inspector.violation(
        person, hospital, behaviour_code="B3-01", responsibility="main", decided_on="2026-04-10"
    )
    assert second["standing"]["points_total"] == 12
    assert second["standing"]["tier"] == "termination"
    assert second["triggered"] == [
        {
            "type": "sanction",
            "kind": "termination",
            "violation_id": second["id"],
            "start": "2026-04-10",
            "barred_until": "2027-04-10",
            "bar_years": 1,
            "basis": "cumulative",
            "shortened_by_months": 0,
        }
    ]


def test_suspension_terms_top_up_and_queue_after_the_running_one(admin, inspector):
    person, hospital = admin.person()
    inspector.violation(
        person, hospital, behaviour_code="B2-01", responsibility="main", decided_on="2026-02-01"
    )
    nine = inspector.violation(
        person, hospital, behaviour_code="B1-01", responsibility="main", decided_on="2026-03-01"
    )
    assert nine["standing"]["points_total"] == 9
    assert [(t["kind"], t["start"], t["end"], t["months"], t["basis"]) for t in nine["triggered"]] == [
        ("suspension", "2026-03-01", "2026-05-01", 2, "cumulative")
    ]
    ten = inspector.violation(
        person, hospital, behaviour_code="B1-01", responsibility="general", decided_on="2026-04-01"
    )
    assert ten["standing"]["points_total"] == 10
    assert [(t["kind"], t["start"], t["end"], t["months"], t["basis"]) for t in ten["triggered"]] == [
        ("suspension", "2026-05-01", "2026-06-01", 1, "cumulative")
    ]
    assert [(s["start"], s["end"], s["months"]) for s in _standing(admin, person)["sanctions"]] == [
        ("2026-03-01", "2026-05-01", 2),
        ("2026-05-01", "2026-06-01", 1),
    ]
    eligibility = admin.get(f"/v1/practitioners/{person}/eligibility", query={"at": "2026-04-15"})
    assert (eligibility["status"], eligibility["until"]) == ("suspended", "2026-06-01")
