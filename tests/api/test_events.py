"""The change feed: GET /v1/events (docs/api.md "Measures, policy, events").

CloudEvents 1.0 shaped, in order, paged by an opaque cursor, filtered to what the caller may see:
an HR system sees its staff only, and of decisions only those made at its own institution.
Decisions are made today on the real clock (Asia/Shanghai), so the suite passes on any date.
Events about nobody in particular (year.rolled_over) may be in the database from other tests:
assertions look at the events about the people made here.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from factories import Api, make_key

from points_service.clock import local_today, utc_now
from points_service.rules.calendar import add_months, add_years
from points_service.services import events as events_svc

PROBLEM = "application/problem+json"


def _today() -> str:
    return local_today().isoformat()


def _key(session, role: str, **scope) -> str:
    return make_key(session, role, **scope)


def _feed(api: Api, **query) -> list[dict]:
    """Every event the caller may see (one page is enough here), oldest first."""
    page = api.get("/v1/events", query={"limit": 500, **query})
    assert len(page["items"]) < 500
    return page["items"]


def _about(items: list[dict], *persons: str) -> list[tuple[str, str]]:
    """(person, type) of the events about these people, in feed order."""
    subjects = {f"practitioners/{p}": p for p in persons}
    return [(subjects[e["subject"]], e["type"]) for e in items if e["subject"] in subjects]


def _personal(items: list[dict]) -> list[dict]:
    return [e for e in items if e["subject"] is not None]


# -- the envelope and the cursor ------------------------------------------------------------------


def test_the_feed_returns_cloud_events_in_order_with_a_next_cursor(client, session, admin, inspector):
    person, hospital = admin.person()
    violation = inspector.violation(person, hospital, behaviour_code="B2-01", decided_on=_today())
    hr = Api(client, _key(session, "hr_system", institution_code=hospital))
    started = utc_now()

    page = hr.get("/v1/events")
    assert set(page) == {"items", "next_cursor"}
    items = _personal(page["items"])
    assert [e["type"] for e in items] == ["registration.created", "violation.recorded", "measure.triggered"]
    for event in page["items"]:
        assert set(event) == {
            "specversion",
            "id",
            "source",
            "type",
            "subject",
            "time",
            "datacontenttype",
            "sequence",
            "data",
        }
        assert event["specversion"] == "1.0"
        assert str(uuid.UUID(event["id"])) == event["id"]
        assert event["source"] == "/points-service"
        assert event["datacontenttype"] == "application/json"
        assert event["time"].endswith("Z")
        assert dt.datetime.fromisoformat(event["time"]) <= started
    for event in items:
        assert event["subject"] == f"practitioners/{person}"
        assert event["data"]["practitioner_code"] == person
    sequences = [e["sequence"] for e in page["items"]]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    assert len({e["id"] for e in page["items"]}) == len(page["items"])

    recorded = items[1]["data"]
    assert recorded == {
        "violation_id": violation["id"],
        "case_ref": violation["case_ref"],
        "practitioner_code": person,
        "institution_code": hospital,
        "behaviour_code": "B2-01",
        "points": 4,
        "decided_on": _today(),
        "score_year": local_today().year,
        "link": f"/v1/violations/{violation['id']}",
    }
    assert {
        k: items[2]["data"][k] for k in ("kind", "practitioner_code", "triggered_on", "violation_id")
    } == {
        "kind": "agency_talk",
        "practitioner_code": person,
        "triggered_on": _today(),
        "violation_id": violation["id"],
    }

    # nothing new: the same cursor back (never null), and later events after it
    empty = hr.get("/v1/events", query={"after": page["next_cursor"]})
    assert empty == {"items": [], "next_cursor": page["next_cursor"]}
    inspector.violation(person, hospital, behaviour_code="B1-01", decided_on=_today())
    later = hr.get("/v1/events", query={"after": page["next_cursor"]})
    assert [e["type"] for e in _personal(later["items"])] == ["violation.recorded"]
    assert later["items"][0]["sequence"] > sequences[-1]
    assert later["next_cursor"] != page["next_cursor"]


def test_paging_with_after_and_limit_one_walks_every_event_once_in_order(client, session, admin, inspector):
    person, hospital = admin.person()
    inspector.violation(person, hospital, behaviour_code="B2-01", decided_on=_today())
    inspector.violation(person, hospital, behaviour_code="B1-01", decided_on=_today())
    hr = Api(client, _key(session, "hr_system", institution_code=hospital))
    everything = _feed(hr)

    walked, cursor = [], None
    for _ in range(len(everything) + 1):
        page = hr.get("/v1/events", query={"limit": 1, **({"after": cursor} if cursor else {})})
        assert len(page["items"]) <= 1
        if not page["items"]:
            assert page["next_cursor"] == cursor
            break
        walked.extend(page["items"])
        cursor = page["next_cursor"]
    assert walked == everything
    assert _about(walked, person) == [
        (person, "registration.created"),
        (person, "violation.recorded"),
        (person, "measure.triggered"),
        (person, "violation.recorded"),  # 5 points: still the agency talk, no new measure
    ]


def test_a_cursor_that_is_not_one_the_service_issued_is_a_422(client, admin):
    response = client.get("/v1/events", query_string={"after": "%%%not-a-cursor"}, headers=admin.headers)
    assert response.status_code == 422
    assert response.mimetype == PROBLEM


@pytest.mark.parametrize("limit", [0, 501, "many"])
def test_a_limit_outside_1_to_500_is_a_422(client, admin, limit):
    response = client.get("/v1/events", query_string={"limit": limit}, headers=admin.headers)
    assert response.status_code == 422
    assert response.mimetype == PROBLEM


def test_the_feed_pages_by_fifty_when_no_limit_is_given(client, session, admin):
    for year in range(60):
        events_svc.emit(
            session,
            "year.rolled_over",
            data={"year": 3000 + year, "previous_year": 2999 + year},
            now=utc_now(),
        )
    session.flush()
    assert len(admin.get("/v1/events")["items"]) == 50


# -- who sees what --------------------------------------------------------------------------------


@pytest.fixture
def two_hospitals(client, session, admin, inspector):
    """Hospital A with its own person, hospital B with its own, and one person working at both.

    Returns (a, b, a_person, b_person, both)."""
    a, b = admin.institution(), admin.institution()
    a_person, b_person, both = admin.practitioner(), admin.practitioner(), admin.practitioner()
    admin.register(a_person, a)
    admin.register(b_person, b)
    admin.register(both, a)
    admin.register(both, b)
    inspector.violation(a_person, a, behaviour_code="B2-01", decided_on=_today())  # + agency_talk
    inspector.violation(b_person, b, behaviour_code="B2-01", decided_on=_today())
    # the person working at both is suspended for a decision made at B
    inspector.violation(both, b, behaviour_code="B3-01", responsibility="main", decided_on=_today())
    return a, b, a_person, b_person, both


def test_an_hr_system_sees_events_about_its_staff_only(client, session, two_hospitals):
    a, _, a_person, b_person, both = two_hospitals
    hr_a = Api(client, _key(session, "hr_system", institution_code=a))
    items = _feed(hr_a)
    assert _about(items, a_person, b_person, both) == [
        (a_person, "registration.created"),
        (both, "registration.created"),  # at A; the registration at B is B's business
        (a_person, "violation.recorded"),
        (a_person, "measure.triggered"),
        (both, "eligibility.suspended"),  # whether A's staff may be paid concerns A
    ]
    # nothing about anybody else, whatever else the database holds
    assert {e["subject"] for e in _personal(items)} == {f"practitioners/{a_person}", f"practitioners/{both}"}
    assert {e["type"] for e in items if e["subject"] is None} <= {"year.rolled_over"}


def test_of_a_person_at_two_institutions_each_hr_system_sees_its_own_decisions_and_every_eligibility_change(
    client, session, two_hospitals
):
    a, b, _, _, both = two_hospitals
    hr_a = Api(client, _key(session, "hr_system", institution_code=a))
    hr_b = Api(client, _key(session, "hr_system", institution_code=b))
    assert [t for _, t in _about(_feed(hr_a), both)] == ["registration.created", "eligibility.suspended"]
    assert [t for _, t in _about(_feed(hr_b), both)] == [
        "registration.created",
        "violation.recorded",
        "eligibility.suspended",
    ]
    seen_by_a = [e for e in _feed(hr_a) if e["subject"] == f"practitioners/{both}"]
    assert seen_by_a[0]["data"]["institution_code"] == a


def test_a_practitioner_sees_only_events_about_themselves(client, session, two_hospitals):
    _, _, a_person, b_person, both = two_hospitals
    own = Api(client, _key(session, "practitioner", practitioner_code=both))
    items = _feed(own)
    assert _about(items, a_person, b_person, both) == [
        (both, "registration.created"),
        (both, "registration.created"),
        (both, "violation.recorded"),
        (both, "eligibility.suspended"),
    ]
    assert {e["subject"] for e in _personal(items)} == {f"practitioners/{both}"}


@pytest.mark.parametrize("role", ["admin", "reviewer", "inspector"])
def test_national_roles_see_every_institution(client, session, two_hospitals, role):
    _, _, a_person, b_person, both = two_hospitals
    api = Api(client, _key(session, role))
    assert _about(_feed(api), a_person, b_person, both) == [
        (a_person, "registration.created"),
        (b_person, "registration.created"),
        (both, "registration.created"),
        (both, "registration.created"),
        (a_person, "violation.recorded"),
        (a_person, "measure.triggered"),
        (b_person, "violation.recorded"),
        (b_person, "measure.triggered"),
        (both, "violation.recorded"),
        (both, "eligibility.suspended"),
    ]


def test_the_type_filter_returns_only_the_types_asked_for(client, session, two_hospitals):
    a, _, a_person, _, both = two_hospitals
    hr_a = Api(client, _key(session, "hr_system", institution_code=a))
    one = hr_a.get("/v1/events", query={"type": "eligibility.suspended", "limit": 500})["items"]
    assert [(e["type"], e["subject"]) for e in one] == [("eligibility.suspended", f"practitioners/{both}")]
    two = _feed(hr_a, type=["measure.triggered", "registration.created"])
    assert _about(two, a_person, both) == [
        (a_person, "registration.created"),
        (both, "registration.created"),
        (a_person, "measure.triggered"),
    ]
    assert {e["type"] for e in two} <= {"measure.triggered", "registration.created"}


def test_an_unknown_event_type_is_a_422_problem(client, admin):
    response = client.get("/v1/events", query_string={"type": "violation.exploded"}, headers=admin.headers)
    assert response.status_code == 422
    assert response.mimetype == PROBLEM
    assert set(response.get_json()["errors"]) == {"type.0"}


def test_an_unknown_query_argument_is_a_422(client, admin):
    response = client.get("/v1/events", query_string={"cursor": "x"}, headers=admin.headers)
    assert response.status_code == 422


def test_the_feed_needs_a_key(client):
    response = client.get("/v1/events")
    assert response.status_code == 401
    assert response.mimetype == PROBLEM
    bad = client.get("/v1/events", headers={"Authorization": "Bearer not-a-key"})
    assert bad.status_code == 401


# -- what the lifecycle says ----------------------------------------------------------------------


def test_a_revoked_decision_emits_violation_revoked_and_eligibility_reinstated(
    client, session, admin, inspector
):
    person, hospital = admin.person()
    violation = inspector.violation(
        person, hospital, behaviour_code="B3-01", responsibility="main", decided_on=_today()
    )
    own = Api(client, _key(session, "practitioner", practitioner_code=person))
    appeal = own.post(f"/v1/violations/{violation['id']}/appeals", {"reason": "I was on leave that week"})
    reviewer = Api(client, _key(session, "reviewer"))
    reviewer.post(
        f"/v1/appeals/{appeal['id']}/decision", {"outcome": "revoked", "reason": "wrong person"}, status=200
    )

    items = [e for e in _feed(own) if e["subject"] == f"practitioners/{person}"]
    assert [e["type"] for e in items] == [
        "registration.created",
        "violation.recorded",
        "eligibility.suspended",
        "appeal.filed",
        "appeal.revoked",
        "violation.revoked",
        "eligibility.reinstated",
    ]
    suspended, revoked, reinstated = items[2]["data"], items[5]["data"], items[6]["data"]
    assert (suspended["on"], suspended["until"]) == (_today(), add_months(local_today(), 4).isoformat())
    assert revoked == {
        "violation_id": violation["id"],
        "case_ref": violation["case_ref"],
        "practitioner_code": person,
        "points": 0,
        "previous_points": 9,
        "appeal_id": appeal["id"],
        "link": f"/v1/violations/{violation['id']}",
    }
    assert reinstated == {
        "practitioner_code": person,
        "status": "active",
        "previous_status": "suspended",
        "on": _today(),
        "until": None,
        "barred_until": None,
        "reason": "registered and not suspended or terminated",
    }
    # the HR system of the institution sees the same story
    hr = Api(client, _key(session, "hr_system", institution_code=hospital))
    assert [t for _, t in _about(_feed(hr), person)] == [e["type"] for e in items]


def test_a_termination_emits_eligibility_terminated_and_registration_ended_by_termination(
    client, session, admin, inspector
):
    person, hospital = admin.person()
    inspector.violation(person, hospital, behaviour_code="B4-01", responsibility="main", decided_on=_today())
    hr = Api(client, _key(session, "hr_system", institution_code=hospital))
    items = [e for e in _feed(hr) if e["subject"] == f"practitioners/{person}"]
    assert [e["type"] for e in items] == [
        "registration.created",
        "violation.recorded",
        "registration.ended",
        "eligibility.terminated",
    ]
    ended, terminated = items[2]["data"], items[3]["data"]
    assert ended == {
        "practitioner_code": person,
        "institution_code": hospital,
        "registration_id": ended["registration_id"],
        "end_date": _today(),
        "reason": "termination",
    }
    barred_until = add_years(local_today(), 3).isoformat()
    assert {k: terminated[k] for k in ("status", "previous_status", "on", "until", "barred_until")} == {
        "status": "terminated",
        "previous_status": "active",
        "on": _today(),
        "until": None,
        "barred_until": barred_until,
    }


def test_an_hr_system_ending_a_registration_emits_registration_ended_with_its_reason(client, session, admin):
    person, hospital = admin.person()
    hr = Api(client, _key(session, "hr_system", institution_code=hospital))
    hr.post(
        f"/v1/practitioners/{person}/registrations/{hospital}/end",
        {"end_date": _today(), "reason": "left the hospital"},
        status=(200, 201),
    )
    ended = [e for e in _feed(hr) if e["subject"] == f"practitioners/{person}"][-1]
    assert (ended["type"], ended["data"]["reason"], ended["data"]["end_date"]) == (
        "registration.ended",
        "left the hospital",
        _today(),
    )
