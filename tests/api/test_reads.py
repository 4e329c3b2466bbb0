"""Standing, eligibility, rosters, history, policy and health through the HTTP API."""

from __future__ import annotations

import datetime as dt

import pytest
from factories import Api, code, make_key
from sqlalchemy import select

from points_service.clock import local_today
from points_service.persistence.models import ApiKey
from points_service.services.keys import hash_key


def test_standing_defaults_to_the_current_year_and_takes_a_year(admin, inspector):
    person, hospital = admin.person(start="2025-01-01")
    inspector.violation(
        person, hospital, behaviour_code="B1-01", responsibility="main", decided_on="2025-06-01"
    )
    inspector.violation(
        person, hospital, behaviour_code="B2-01", responsibility="general", decided_on="2026-02-01"
    )
    this_year = local_today().year
    default = admin.get(f"/v1/practitioners/{person}/standing")
    assert default == admin.get(f"/v1/practitioners/{person}/standing", query={"year": this_year})
    assert default["year"] == this_year
    y2025 = admin.get(f"/v1/practitioners/{person}/standing", query={"year": 2025})
    assert {k: y2025[k] for k in ("year", "points_total", "points_recorded", "max_single_event", "tier")} == {
        "year": 2025,
        "points_total": 3,
        "points_recorded": 3,
        "max_single_event": 3,
        "tier": "institution_talk",
    }
    assert [m["kind"] for m in y2025["measures"]] == ["institution_talk"]
    y2026 = admin.get(f"/v1/practitioners/{person}/standing", query={"year": 2026})
    assert (y2026["points_total"], y2026["tier"], y2026["status"]) == (4, "agency_talk", "active")
    assert [(m["kind"], m["triggered_on"], m["state"]) for m in y2026["measures"]] == [
        ("agency_talk", "2026-02-01", "pending")
    ]
    empty = admin.get(f"/v1/practitioners/{person}/standing", query={"year": 2024})
    assert (empty["points_total"], empty["tier"], empty["measures"], empty["sanctions"]) == (
        0,
        "none",
        [],
        [],
    )


def test_eligibility_at_another_institution_is_not_registered(admin):
    person, hospital = admin.person(start="2025-01-01")
    elsewhere = admin.institution()
    path = f"/v1/practitioners/{person}/eligibility"
    here = admin.get(path, query={"at": "2026-05-01", "institution_code": hospital})
    assert (here["eligible"], here["status"], here["until"]) == (True, "active", None)
    there = admin.get(path, query={"at": "2026-05-01", "institution_code": elsewhere})
    assert there == {
        "practitioner_code": person,
        "at": "2026-05-01",
        "eligible": False,
        "status": "not_registered",
        "reason": f"no registration at {elsewhere} covers 2026-05-01 (docs/rules.md rule 4)",
        "until": None,
        "barred_until": None,
        "emergency_care_settles": True,
    }
    before = admin.get(path, query={"at": "2024-12-31"})
    assert (before["eligible"], before["status"]) == (False, "not_registered")


def test_batch_eligibility_answers_in_request_order_and_unknown_codes_are_unknown(admin, inspector):
    active, hospital = admin.person()
    suspended, hospital2 = admin.person()
    inspector.violation(
        suspended, hospital2, behaviour_code="B3-01", responsibility="main", decided_on="2026-04-10"
    )
    missing = code("P")
    body = admin.post(
        "/v1/eligibility/batch",
        {"practitioner_codes": [suspended, missing, active], "at": "2026-05-01"},
        status=200,
    )
    assert [(r["practitioner_code"], r["eligible"], r["status"]) for r in body["results"]] == [
        (suspended, False, "suspended"),
        (missing, False, "unknown"),
        (active, True, "active"),
    ]
    assert body["results"][0]["until"] == "2026-08-10"
    assert body["results"][1] == {
        "practitioner_code": missing,
        "at": "2026-05-01",
        "eligible": False,
        "status": "unknown",
        "reason": "no such practitioner",
        "until": None,
        "barred_until": None,
        "emergency_care_settles": True,
    }
    at_hospital = admin.post(
        "/v1/eligibility/batch",
        {"practitioner_codes": [active, suspended], "at": "2026-09-01", "institution_code": hospital},
        status=200,
    )
    assert [r["status"] for r in at_hospital["results"]] == ["active", "not_registered"]


def test_a_batch_of_more_than_1000_codes_is_a_422(admin):
    body = admin.post(
        "/v1/eligibility/batch", {"practitioner_codes": [f"P{i}" for i in range(1001)]}, status=422
    )
    assert list(body["errors"]) == ["practitioner_codes"]
    ok = admin.post(
        "/v1/eligibility/batch", {"practitioner_codes": [f"P{i}" for i in range(1000)]}, status=200
    )
    assert len(ok["results"]) == 1000


def test_an_empty_batch_is_a_422(admin):
    body = admin.post("/v1/eligibility/batch", {"practitioner_codes": []}, status=422)
    assert list(body["errors"]) == ["practitioner_codes"]


@pytest.mark.parametrize(
    "codes, refused",
    [
        (["P1", ""], {"practitioner_codes.1": ["Length must be between 1 and 64."]}),
        (["P1", "P" * 65], {"practitioner_codes.1": ["Length must be between 1 and 64."]}),
        (["P1", 5], {"practitioner_codes.1": ["Not a valid string."]}),
        ([None], {"practitioner_codes.0": ["Field may not be null."]}),
        ("P1", {"practitioner_codes": ["Not a valid list."]}),
    ],
)
def test_a_batch_names_the_code_it_refuses_by_its_position(admin, codes, refused):
    body = admin.post("/v1/eligibility/batch", {"practitioner_codes": codes}, status=422)
    assert body["errors"] == refused


def test_the_roster_lists_staff_registered_on_the_day_page_by_page(admin, inspector):
    hospital = admin.institution()
    people = sorted(admin.practitioner() for _ in range(3))
    for person in people:
        admin.register(person, hospital, "2025-01-01")
    late = admin.practitioner()
    admin.register(late, hospital, "2026-06-01")
    left = admin.practitioner()
    admin.register(left, hospital, "2025-01-01")
    admin.post(
        f"/v1/practitioners/{left}/registrations/{hospital}/end",
        {"end_date": "2026-05-01", "reason": "left"},
        status=200,
    )
    inspector.violation(
        people[1], hospital, behaviour_code="B3-01", responsibility="main", decided_on="2026-04-10"
    )

    seen, cursor, pages = [], None, 0
    while True:
        query = {"at": "2026-05-01", "limit": 1} | ({"cursor": cursor} if cursor else {})
        page = admin.get(f"/v1/institutions/{hospital}/eligibility", query=query)
        pages += 1
        assert len(page["items"]) == 1
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert pages == 3
    assert [(i["practitioner_code"], i["eligible"], i["status"]) for i in seen] == [
        (people[0], True, "active"),
        (people[1], False, "suspended"),
        (people[2], True, "active"),
    ]
    everyone_later = admin.get(f"/v1/institutions/{hospital}/eligibility", query={"at": "2026-06-01"})
    assert sorted(i["practitioner_code"] for i in everyone_later["items"]) == sorted([*people, late])
    assert everyone_later["next_cursor"] is None


def test_history_lists_registrations_decisions_measures_and_sanctions_in_order(
    client, session, admin, admin_key
):
    inspector_key = make_key(session, "inspector")
    inspector = Api(client, inspector_key)
    person, hospital = admin.person(start="2025-01-01")
    first = inspector.violation(
        person, hospital, behaviour_code="B2-01", responsibility="general", decided_on="2026-02-01"
    )
    second = inspector.violation(
        person, hospital, behaviour_code="B2-01", responsibility="important", decided_on="2026-05-01"
    )
    assert second["standing"]["points_total"] == 9
    history = admin.get(f"/v1/practitioners/{person}/history")
    assert history["next_cursor"] is None
    items = history["items"]
    assert [(i["kind"], i["on"], i.get("violation_id")) for i in items] == [
        ("registration_created", "2025-01-01", None),
        ("decision", "2026-02-01", first["id"]),
        ("measure", "2026-02-01", first["id"]),
        ("decision", "2026-05-01", second["id"]),
        ("sanction", "2026-05-01", second["id"]),
    ]
    admin_id = session.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(admin_key)))
    inspector_id = session.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(inspector_key)))
    assert [i["by"] for i in items] == [
        f"key:{admin_id}:test-admin",
        f"key:{inspector_id}:test-inspector",
        "rules",
        f"key:{inspector_id}:test-inspector",
        "rules",
    ]
    assert items[1]["points"] == 4 and items[3]["points"] == 5
    assert items[4]["detail"] == "suspension from 2026-05-01 to 2026-07-01 (cumulative)"
    paged = admin.get(f"/v1/practitioners/{person}/history", query={"limit": 2})
    assert [i["kind"] for i in paged["items"]] == ["registration_created", "decision"]
    rest = admin.get(
        f"/v1/practitioners/{person}/history", query={"limit": 5, "cursor": paged["next_cursor"]}
    )
    assert rest["items"] == items[2:] and rest["next_cursor"] is None


def test_the_policy_lists_both_profiles_and_the_default(admin):
    body = admin.get("/v1/policy")
    assert body["default_profile"] == "hebei-2025"
    assert sorted(p["id"] for p in body["profiles"]) == ["hebei-2025", "qinghai-2025"]
    by_id = {p["id"]: p for p in body["profiles"]}
    assert by_id["qinghai-2025"]["provinces"] == ["63"]
    assert by_id["hebei-2025"]["cumulative_bar_years"] == 1
    assert by_id["hebei-2025"]["single_event_bar_years"] == 3
    assert by_id["hebei-2025"]["effective_from"] == "2025-01-01"


def test_health_checks_need_no_key(client):
    live = client.get("/health/live")
    assert (live.status_code, live.get_json()) == (200, {"status": "ok"})
    ready = client.get("/health/ready")
    assert (ready.status_code, ready.get_json()) == (200, {"status": "ready"})


def test_today_is_after_the_dates_these_tests_use():
    assert local_today() >= dt.date(2026, 11, 23)


def test_a_roster_page_holds_up_to_2000_people_and_no_more(admin):
    hospital = admin.institution()
    person = admin.practitioner()
    admin.register(person, hospital, "2025-01-01")
    page = admin.get(f"/v1/institutions/{hospital}/eligibility", query={"at": "2025-07-01", "limit": 2000})
    assert [i["practitioner_code"] for i in page["items"]] == [person]
    body = admin.get(f"/v1/institutions/{hospital}/eligibility", query={"limit": 2001}, status=422)
    assert list(body["errors"]) == ["limit"]


def test_a_read_without_a_query_answers_as_one_whose_query_parses_to_nothing(admin, inspector):
    """Without a query string a view gets what its schema loads from nothing, without webargs
    (api.base._without_empty_query); `?&` is a query that webargs parses to the same nothing."""
    person, hospital = admin.person(start="2025-01-01")
    inspector.violation(
        person, hospital, behaviour_code="B1-01", responsibility="main", decided_on="2026-02-01"
    )
    paths = (
        f"/v1/practitioners/{person}/eligibility",
        f"/v1/practitioners/{person}/standing",
        f"/v1/practitioners/{person}/history",
        f"/v1/institutions/{hospital}/eligibility",
        "/v1/measures",
        "/v1/events",
        "/v1/audit",
        "/v1/notices",
        "/v1/statistics",
    )
    for path in paths:
        bare = admin.client.get(path, headers=admin.headers)
        parsed = admin.client.get(path + "?&", headers=admin.headers)
        assert bare.status_code == parsed.status_code == 200, (path, bare.get_data(as_text=True))
        assert bare.get_json() == parsed.get_json(), path
    # a query is parsed as before: an unknown parameter is refused
    refused = admin.client.get(f"/v1/practitioners/{person}/eligibility?colour=red", headers=admin.headers)
    assert refused.status_code == 422
