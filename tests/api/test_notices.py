"""The public notice register (docs/rules.md rule 13; docs/api.md Public notices).

Notices are made by 7-point decisions (B3-01, general responsibility: a public notice in the
default profile). Each test's institutions are in a province no other test has used in this
database, so the register filtered by that province is exactly the test's own.
"""

from __future__ import annotations

import pytest
from factories import Api, make_key
from factories import assert_problem as _problem
from sqlalchemy import func, select

from points_service.api.base import encode_cursor
from points_service.clock import local_today
from points_service.persistence.models import Institution
from points_service.rules.effects import ended_state
from points_service.rules.identifiers import PROVINCES

B3_01 = "settling fund fees under the name of an unregistered, suspended or terminated person"


@pytest.fixture
def province(session) -> str:
    used = set(session.scalars(select(func.substr(Institution.region_code, 1, 2)).distinct()))
    return next(p for p in sorted(PROVINCES) if p not in used)


def _notice(admin: Api, inspector: Api, institution: str, decided_on: str) -> tuple[str, dict]:
    """A person at the institution with a 7-point decision: (their code, the decision)."""
    person = admin.practitioner()
    admin.register(person, institution, "2025-01-01")
    decision = inspector.violation(
        person, institution, behaviour_code="B3-01", responsibility="general", decided_on=decided_on
    )
    [measure] = [t for t in decision["triggered"] if t["type"] == "measure"]
    assert measure["kind"] == "public_notice"
    return person, decision | {"measure_id": measure["id"]}


def _publish(api: Api, decision: dict, on: str, **body) -> dict:
    return api.post(
        f"/v1/measures/{decision['measure_id']}/publish", {"published_on": on, **body}, status=200
    )


def _register(api: Api, **query) -> dict:
    return api.get("/v1/notices", query=query)


def test_the_register_lists_published_notices_newest_first_page_by_page(admin, inspector, reviewer, province):
    hospital = admin.institution(region_code=f"{province}0100")
    _, first = _notice(admin, inspector, hospital, "2026-02-02")
    _, second = _notice(admin, inspector, hospital, "2026-03-02")
    _, third = _notice(admin, inspector, hospital, "2026-03-02")
    _, older = _notice(admin, inspector, hospital, "2025-06-02")
    _notice(admin, inspector, hospital, "2026-03-02")  # never published: not in the register
    _publish(reviewer, first, "2026-02-10")
    _publish(reviewer, third, "2026-03-10")
    _publish(reviewer, second, "2026-03-10")
    _publish(reviewer, older, "2025-07-01")

    page = _register(reviewer, province=province, limit=2)
    # the same day: the later publication first (by id: `third`'s task was made after `second`'s)
    assert [n["id"] for n in page["items"]] == [third["measure_id"], second["measure_id"]]
    rest = _register(reviewer, province=province, limit=2, cursor=page["next_cursor"])
    assert [n["id"] for n in rest["items"]] == [first["measure_id"], older["measure_id"]]
    assert rest["next_cursor"] is None
    whole = _register(reviewer, province=province)
    assert whole["items"] == page["items"] + rest["items"] and whole["next_cursor"] is None

    assert [n["id"] for n in _register(reviewer, province=province, year=2025)["items"]] == [
        older["measure_id"]
    ]
    assert [n["published_on"] for n in _register(reviewer, province=province, year=2026)["items"]] == [
        "2026-03-10",
        "2026-03-10",
        "2026-02-10",
    ]


def test_a_notice_shows_the_name_institution_behaviour_points_and_day_it_was_published(
    admin, inspector, reviewer, province
):
    hospital = admin.institution(region_code=f"{province}0100")
    person, decision = _notice(admin, inspector, hospital, "2026-03-02")
    _publish(reviewer, decision, "2026-03-09")
    [notice] = _register(reviewer, province=province)["items"]
    assert notice == {
        "id": decision["measure_id"],
        "published_name": f"Person {person}",  # the registry name when the agency gives none
        "institution_code": hospital,
        "institution_name": f"Hospital {hospital}",
        "behaviour_code": "B3-01",
        "behaviour_description": B3_01,
        "points": 7,
        "year": 2026,
        "published_on": "2026-03-09",
    }
    assert "practitioner_code" not in notice


def test_a_notice_is_published_under_the_name_the_agency_gives(admin, inspector, reviewer, province):
    hospital = admin.institution(region_code=f"{province}0100")
    _, decision = _notice(admin, inspector, hospital, "2026-03-02")
    published = _publish(reviewer, decision, "2026-03-09", published_name="Zhang W.")
    assert (published["state"], published["published_name"]) == ("published", "Zhang W.")
    assert [n["published_name"] for n in _register(reviewer, province=province)["items"]] == ["Zhang W."]


def test_a_blank_published_name_is_refused_and_nothing_is_published(
    client, admin, inspector, reviewer, province
):
    hospital = admin.institution(region_code=f"{province}0100")
    _, decision = _notice(admin, inspector, hospital, "2026-03-02")
    response = client.post(
        f"/v1/measures/{decision['measure_id']}/publish",
        json={"published_on": "2026-03-09", "published_name": "  "},
        headers=reviewer.headers,
    )
    assert "published_name" in _problem(response, 422)["errors"]
    assert _register(reviewer, province=province)["items"] == []


def test_every_role_reads_the_whole_register(client, session, admin, inspector, reviewer, province):
    hospital = admin.institution(region_code=f"{province}0100")
    elsewhere = admin.institution(region_code=f"{province}0200")
    _, decision = _notice(admin, inspector, hospital, "2026-03-02")
    _publish(reviewer, decision, "2026-03-09")
    stranger = admin.practitioner()
    admin.register(stranger, elsewhere, "2025-01-01")
    expected = _register(admin, province=province)
    assert [n["id"] for n in expected["items"]] == [decision["measure_id"]]
    for key in (
        make_key(session, "inspector"),
        make_key(session, "hr_system", institution_code=elsewhere),
        make_key(session, "practitioner", practitioner_code=stranger),
    ):
        assert _register(Api(client, key), province=province) == expected
    _problem(client.get("/v1/notices"), 401, "not-authenticated")


def test_a_revoked_decisions_notice_is_withdrawn_from_the_register_and_kept_in_the_file(
    client, session, admin, inspector, reviewer, province
):
    today = local_today().isoformat()
    hospital = admin.institution(region_code=f"{province}0100")
    person, decision = _notice(admin, inspector, hospital, today)
    _, unpublished = _notice(admin, inspector, hospital, today)
    _publish(reviewer, decision, today)
    assert [n["id"] for n in _register(reviewer, province=province)["items"]] == [decision["measure_id"]]

    for revoked in (decision, unpublished):
        appeal = admin.post(f"/v1/violations/{revoked['id']}/appeals", {"reason": "not me"})
        reviewer.post(
            f"/v1/appeals/{appeal['id']}/decision", {"outcome": "revoked", "reason": "not him"}, status=200
        )

    assert _register(reviewer, province=province)["items"] == []
    tasks = {m["id"]: m for m in admin.get("/v1/measures", query={"institution_code": hospital})["items"]}
    withdrawn, cancelled = tasks[decision["measure_id"]], tasks[unpublished["measure_id"]]
    assert (withdrawn["state"], withdrawn["published_on"]) == ("withdrawn", today)
    assert withdrawn["withdrawn_at"] is not None
    # a notice nobody had published is cancelled, as any other task whose cause went
    assert (cancelled["state"], cancelled["withdrawn_at"]) == ("cancelled", None)

    history = admin.get(f"/v1/practitioners/{person}/history")["items"]
    kinds = [item["kind"] for item in history if item.get("violation_id") == decision["id"]]
    assert kinds[-1] == "measure_withdrawn" and "measure_completed" in kinds
    events = admin.get("/v1/events", query={"type": "measure.withdrawn", "limit": 500})["items"]
    [event] = [e for e in events if e["data"]["measure_id"] == decision["measure_id"]]
    assert event["data"] == {
        "measure_id": decision["measure_id"],
        "kind": "public_notice",
        "practitioner_code": person,
        "year": local_today().year,
        "violation_id": decision["id"],
        "published_on": today,
        "withdrawn_on": today,
    }
    # a withdrawn notice is not published again
    response = client.post(
        f"/v1/measures/{decision['measure_id']}/publish",
        json={"published_on": today},
        headers=reviewer.headers,
    )
    _problem(response, 409, "workflow-conflict")


def test_an_amended_decision_keeps_its_notice_with_its_current_points(admin, inspector, reviewer, province):
    today = local_today().isoformat()
    hospital = admin.institution(region_code=f"{province}0100")
    _, decision = _notice(admin, inspector, hospital, today)
    _publish(reviewer, decision, today)
    appeal = admin.post(f"/v1/violations/{decision['id']}/appeals", {"reason": "too much"})
    body = {"outcome": "amended", "points": 8, "reason": "important, not general"}
    reviewer.post(f"/v1/appeals/{appeal['id']}/decision", body, status=200)
    [notice] = _register(reviewer, province=province)["items"]
    assert (notice["id"], notice["points"]) == (decision["measure_id"], 8)


@pytest.mark.parametrize(
    "query",
    [
        {"cursor": "not-a-cursor"},
        {"cursor": encode_cursor([10**12, 1])},  # a day past the calendar's end
        {"cursor": encode_cursor([0, 1])},
        {"cursor": encode_cursor(5)},
        {"province": "99"},
        {"year": 1850},
        {"limit": 0},
        {"state": "published"},
    ],
)
def test_bad_register_queries_are_refused_with_the_parameter_named(client, reviewer, query):
    body = _problem(client.get("/v1/notices", query_string=query, headers=reviewer.headers), 422)
    assert set(query) <= set(body["errors"]), body


@pytest.mark.parametrize(
    ("state", "ended"),
    [("published", "withdrawn"), ("pending", "cancelled"), ("completed", "cancelled")],
)
def test_a_task_whose_cause_vanished_is_withdrawn_only_if_it_was_published(state, ended):
    assert ended_state(state) == ended
