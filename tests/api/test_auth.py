"""Who may do what (docs/api.md Authentication and roles): 401 without a valid key, 403 for a role,
404 outside the scope."""

from __future__ import annotations

import datetime as dt
import hashlib
import time

from factories import ID_NUMBERS, NOW, Api, auth, code, make_key, new_id_number
from sqlalchemy import select

from points_service.clock import utc_now
from points_service.persistence.models import ApiKey
from points_service.services.keys import PRINCIPALS, revoke_key

PROBLEM = "application/problem+json"


def _row(session, secret: str) -> ApiKey:
    return session.scalars(
        select(ApiKey).where(ApiKey.key_hash == hashlib.sha256(secret.encode()).hexdigest())
    ).one()


def _assert_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert (body["status"], body["type"]) == (status, f"urn:points-service:problem:{slug}")
    return body


def _hr(client, session, institution: str) -> Api:
    return Api(client, make_key(session, "hr_system", institution_code=institution))


# -- 401 ------------------------------------------------------------------------------------------


def test_a_request_without_a_key_is_a_401_problem(client, admin):
    person, _ = admin.person()
    body = _assert_problem(client.get(f"/v1/practitioners/{person}"), 401, "not-authenticated")
    assert body["detail"] == "send the API key as 'Authorization: Bearer <key>'"
    _assert_problem(
        client.get(f"/v1/practitioners/{person}", headers={"Authorization": "Basic abc"}),
        401,
        "not-authenticated",
    )


def test_a_wrong_key_is_a_401(client, admin_key):
    response = client.get("/v1/policy", headers=auth(admin_key + "x"))
    body = _assert_problem(response, 401, "not-authenticated")
    assert body["detail"] == "unknown API key"


def test_an_expired_key_is_a_401(client, session):
    secret = make_key(session, "admin", expires_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    body = _assert_problem(client.get("/v1/policy", headers=auth(secret)), 401, "not-authenticated")
    assert body["detail"] == "this API key has expired"


def test_a_key_that_expires_later_still_works(client, session):
    secret = make_key(session, "inspector", expires_at=dt.datetime(2099, 1, 1, tzinfo=dt.UTC))
    response = client.get("/v1/institutions/NOPE", headers=auth(secret))
    assert response.status_code == 404


def test_a_key_revoked_in_this_process_is_a_401_at_once(client, session, admin):
    secret = make_key(session, "inspector")
    hospital = admin.institution()
    assert client.get(f"/v1/institutions/{hospital}", headers=auth(secret)).status_code == 200
    revoke_key(session, secret[:12], now=NOW)
    session.flush()
    body = _assert_problem(
        client.get(f"/v1/institutions/{hospital}", headers=auth(secret)), 401, "not-authenticated"
    )
    assert body["detail"] == "this API key has been revoked"


def test_a_key_revoked_by_another_process_is_a_401_within_the_cache_bound(client, session, admin):
    clock = [0.0]
    PRINCIPALS.configure(5, timer=lambda: clock[0])
    try:
        secret = make_key(session, "inspector")
        hospital = admin.institution()
        assert client.get(f"/v1/institutions/{hospital}", headers=auth(secret)).status_code == 200
        # what `points-service keys revoke` does from its own process: the row only
        session.get(ApiKey, _row(session, secret).id).revoked_at = NOW
        session.flush()
        clock[0] = 4.9
        assert client.get(f"/v1/institutions/{hospital}", headers=auth(secret)).status_code == 200
        clock[0] = 5.0
        body = _assert_problem(
            client.get(f"/v1/institutions/{hospital}", headers=auth(secret)), 401, "not-authenticated"
        )
        assert body["detail"] == "this API key has been revoked"
    finally:
        PRINCIPALS.configure(5)


def test_an_expired_key_is_a_401_at_once_even_when_cached(client, session, admin):
    secret = make_key(session, "inspector", expires_at=utc_now() + dt.timedelta(seconds=1))
    hospital = admin.institution()
    assert client.get(f"/v1/institutions/{hospital}", headers=auth(secret)).status_code == 200
    time.sleep(1.05)
    body = _assert_problem(
        client.get(f"/v1/institutions/{hospital}", headers=auth(secret)), 401, "not-authenticated"
    )
    assert body["detail"] == "this API key has expired"


def test_keys_are_stored_only_as_their_sha256(session):
    secret = make_key(session, "reviewer")
    row = _row(session, secret)
    assert row.key_hash == hashlib.sha256(secret.encode("utf-8")).hexdigest()
    assert secret.startswith("pts_") and row.prefix == secret[:12]
    for column in ApiKey.__table__.columns:
        assert secret not in str(getattr(row, column.key)), column.key


# -- 403 ------------------------------------------------------------------------------------------


def test_an_inspector_may_not_create_institutions(client, inspector):
    c = code("H")
    response = client.post(
        "/v1/institutions",
        json={"code": c, "name": "H", "kind": "medical_institution", "region_code": "130100"},
        headers=inspector.headers,
    )
    _assert_problem(response, 403, "forbidden")
    inspector.get(f"/v1/institutions/{c}", status=404)


def test_a_practitioner_may_not_ask_for_a_batch(client, session, admin):
    person, _ = admin.person()
    own = Api(client, make_key(session, "practitioner", practitioner_code=person))
    body = own.post("/v1/eligibility/batch", {"practitioner_codes": [person]}, status=403)
    assert body["type"] == "urn:points-service:problem:forbidden"


# -- an hr_system is bound to one institution -------------------------------------------------------


def test_an_hr_system_cannot_create_a_person_the_registry_is_the_agencys(client, session, admin):
    hr = _hr(client, session, admin.institution())
    person, number = code("P"), new_id_number()
    body = hr.post(
        "/v1/practitioners",
        {"code": person, "name": "Zhang San", "id_number": number, "category": "nurse"},
        status=403,
    )
    assert body["type"] == "urn:points-service:problem:forbidden"
    # nothing was created: the agency may still create the person under that code and number
    admin.post(
        "/v1/practitioners", {"code": person, "name": "Zhang San", "id_number": number, "category": "nurse"}
    )


def test_an_hr_system_registers_an_existing_person_by_code_and_national_id_together(client, session, admin):
    own = admin.institution()
    hr = _hr(client, session, own)
    person = admin.practitioner()
    registered = hr.post(
        f"/v1/practitioners/{person}/registrations",
        {"institution_code": own, "start_date": "2026-01-01", "id_number": ID_NUMBERS[person].lower()},
    )
    assert registered["institution_code"] == own
    assert hr.get(f"/v1/practitioners/{person}")["code"] == person


def test_an_hr_system_must_name_the_national_id_to_register_someone(client, session, admin):
    own = admin.institution()
    person = admin.practitioner()
    body = _hr(client, session, own).post(
        f"/v1/practitioners/{person}/registrations",
        {"institution_code": own, "start_date": "2026-01-01"},
        status=422,
    )
    assert list(body["errors"]) == ["id_number"]


def test_a_code_and_national_id_that_do_not_match_get_one_answer_that_says_not_which(client, session, admin):
    own = admin.institution()
    hr = _hr(client, session, own)
    person, other_person = admin.practitioner(), admin.practitioner()
    wrong_number = hr.post(
        f"/v1/practitioners/{person}/registrations",
        {"institution_code": own, "start_date": "2026-01-01", "id_number": ID_NUMBERS[other_person]},
        status=422,
    )
    unknown_code = hr.post(
        f"/v1/practitioners/{code('P')}/registrations",
        {"institution_code": own, "start_date": "2026-01-01", "id_number": ID_NUMBERS[person]},
        status=422,
    )
    unknown_number = hr.post(
        f"/v1/practitioners/{person}/registrations",
        {"institution_code": own, "start_date": "2026-01-01", "id_number": new_id_number()},
        status=422,
    )
    malformed_number = hr.post(
        f"/v1/practitioners/{person}/registrations",
        {"institution_code": own, "start_date": "2026-01-01", "id_number": "123"},
        status=422,
    )
    answers = [wrong_number, unknown_code, unknown_number, malformed_number]
    assert len({(a["detail"], a["type"], str(a.get("errors"))) for a in answers}) == 1
    assert "errors" not in wrong_number
    assert admin.get(f"/v1/practitioners/{person}")["registrations"] == []


def test_an_hr_system_registers_at_its_own_institution_only(client, session, admin):
    own, other = admin.institution(), admin.institution()
    hr = _hr(client, session, own)
    person = admin.practitioner()
    registered = hr.register(person, own, "2026-01-01", status=201)
    assert registered["institution_code"] == own
    body = hr.register(person, other, "2026-01-01", status=403)
    assert body["type"] == "urn:points-service:problem:forbidden"
    assert [r["institution_code"] for r in admin.get(f"/v1/practitioners/{person}")["registrations"]] == [own]
    hr.post(
        f"/v1/practitioners/{person}/registrations/{other}/end",
        {"end_date": "2026-06-01", "reason": "x"},
        status=403,
    )


def test_an_hr_system_reads_its_own_staff_but_not_another_institutions(client, session, admin):
    mine, own = admin.person()
    theirs, _ = admin.person()
    hr = _hr(client, session, own)
    assert hr.get(f"/v1/practitioners/{mine}")["code"] == mine
    assert hr.get(f"/v1/practitioners/{mine}/standing")["practitioner_code"] == mine
    for path in ("", "/standing", "/eligibility", "/history"):
        body = hr.get(f"/v1/practitioners/{theirs}{path}", status=404)
        assert body["detail"] == f"no practitioner {theirs}"
    missing = hr.get(f"/v1/practitioners/{code('P')}", status=404)
    assert missing["type"] == "urn:points-service:problem:not-found"


def test_an_hr_system_sees_only_its_own_registrations_of_a_multi_site_practitioner(client, session, admin):
    person, own = admin.person()
    elsewhere = admin.institution()
    admin.register(person, elsewhere, "2025-06-01")
    hr = _hr(client, session, own)
    assert [r["institution_code"] for r in hr.get(f"/v1/practitioners/{person}")["registrations"]] == [own]
    everywhere = admin.get(f"/v1/practitioners/{person}")["registrations"]
    assert sorted(r["institution_code"] for r in everywhere) == sorted([own, elsewhere])


def test_a_practitioner_reads_only_themself(client, session, admin, inspector):
    me, hospital = admin.person()
    someone, _ = admin.person()
    own = Api(client, make_key(session, "practitioner", practitioner_code=me))
    assert own.get(f"/v1/practitioners/{me}")["code"] == me
    assert own.get(f"/v1/practitioners/{me}/eligibility", query={"at": "2026-05-01"})["status"] == "active"
    for path in ("", "/standing", "/eligibility", "/history"):
        own.get(f"/v1/practitioners/{someone}{path}", status=404)
    mine = inspector.violation(me, hospital)
    assert own.get(f"/v1/violations/{mine['id']}")["id"] == mine["id"]
    other_hospital = admin.get(f"/v1/practitioners/{someone}")["registrations"][0]["institution_code"]
    theirs = inspector.violation(someone, other_hospital)
    own.get(f"/v1/violations/{theirs['id']}", status=404)


def test_an_hr_system_sees_violations_made_at_its_institution_only(client, session, admin, inspector):
    person, own = admin.person()
    other = admin.institution()
    admin.register(person, other, "2025-01-01")
    here = inspector.violation(person, own, decided_on="2026-03-01")
    there = inspector.violation(person, other, decided_on="2026-04-01")
    hr = _hr(client, session, own)
    assert hr.get(f"/v1/violations/{here['id']}")["institution_code"] == own
    body = hr.get(f"/v1/violations/{there['id']}", status=404)
    assert body["detail"] == f"no violation {there['id']}"
    assert hr.get(f"/v1/practitioners/{person}/standing", query={"year": 2026})["points_total"] == 2


def test_an_hr_system_batch_answers_unknown_for_people_outside_its_institution(client, session, admin):
    mine, own = admin.person()
    theirs, _ = admin.person()
    missing = code("P")
    hr = _hr(client, session, own)
    body = hr.post(
        "/v1/eligibility/batch",
        {"practitioner_codes": [theirs, mine, missing], "at": "2026-05-01"},
        status=200,
    )
    assert [(r["practitioner_code"], r["status"], r["eligible"]) for r in body["results"]] == [
        (theirs, "unknown", False),
        (mine, "active", True),
        (missing, "unknown", False),
    ]
    assert (body["results"][0]["reason"], body["results"][0]["until"]) == ("no such practitioner", None)


def test_an_hr_system_reads_its_own_roster_but_not_another_institutions(client, session, admin):
    mine, own = admin.person()
    _, other = admin.person()
    hr = _hr(client, session, own)
    roster = hr.get(f"/v1/institutions/{own}/eligibility", query={"at": "2026-05-01"})
    assert [i["practitioner_code"] for i in roster["items"]] == [mine]
    body = hr.get(f"/v1/institutions/{other}/eligibility", query={"at": "2026-05-01"}, status=404)
    assert body["detail"] == f"no institution {other}"
    hr.get(f"/v1/institutions/{other}", status=404)
