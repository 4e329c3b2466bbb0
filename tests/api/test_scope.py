"""An HR system sees only its own institution's part of a person who works at two (OWASP API1).

X is registered at hospitals A and B. At B: two decisions (one appealed with a reason), a repair
application reviewed by B and approved by the agency, the measure and the suspension they bring.
At A: one small decision. A's HR key then walks every list it can read; nothing of B may appear in
any of them (B's code, case numbers, the appeal's text, the evidence, the name of B's key, the ids of
B's decisions, appeal, repair and registration), every item listed must be readable one by one, and
the national facts (status, the suspension's dates, the points total) stay.
"""

from __future__ import annotations

import json

import pytest
from factories import ID_NUMBERS, Api, code, make_key
from sqlalchemy import text

from points_service.clock import local_today, utc_now
from points_service.services import webhooks
from points_service.services.keys import authenticate

B_SECRETS = ("SECRET-B", "KEYNAME-B")


@pytest.fixture
def world(client, session, app):
    admin = Api(client, make_key(session, "admin"))
    inspector = Api(client, make_key(session, "inspector"))
    reviewer = Api(client, make_key(session, "reviewer"))
    hospital_a, hospital_b = admin.institution(), admin.institution()
    person = admin.practitioner()
    admin.register(person, hospital_a, "2025-01-01")
    hr_b_key = make_key(session, "hr_system", institution_code=hospital_b)
    # B's key gets a name that must never reach A (api keys are named by whoever holds them)
    session.execute(text("UPDATE api_key SET name = 'KEYNAME-B' WHERE role = 'hr_system'"))
    hr_b = Api(client, hr_b_key)
    hr_a = Api(client, make_key(session, "hr_system", institution_code=hospital_a))
    registration_b = hr_b.post(
        f"/v1/practitioners/{person}/registrations",
        {"institution_code": hospital_b, "start_date": "2025-01-01", "id_number": ID_NUMBERS[person]},
    )
    today = local_today().isoformat()
    subscription = webhooks.create_subscription(
        session,
        authenticate(session, hr_a.headers["Authorization"][7:], now=utc_now()),
        webhooks.CreateSubscription(
            url="https://hooks.example.com/a", event_types=tuple(webhooks.EVENT_TYPES)
        ),
        keys=app.extensions["points_service"].pii,
        allow_private=True,
        now=utc_now(),
    ).subscription
    small_a = inspector.violation(person, hospital_a, decided_on=today, case_ref=code("A-CASE-"))
    first_b = inspector.violation(
        person, hospital_b, decided_on=today, behaviour_code="B2-01", case_ref=code("SECRET-B-")
    )
    person_key = make_key(session, "practitioner", practitioner_code=person)
    appeal = Api(client, person_key).post(
        f"/v1/violations/{first_b['id']}/appeals", {"reason": "SECRET-B the appeal's own words"}
    )
    repair = hr_b.post(
        "/v1/repairs",
        {
            "practitioner_code": person,
            "institution_code": hospital_b,
            "activity": "online_study",
            "completed_on": today,
            "evidence_ref": "SECRET-B-certificate",
        },
    )
    repair = hr_b.post(
        f"/v1/repairs/{repair['id']}/institution-review",
        {"decision": "approve", "comment": "SECRET-B attended", "version": repair["version"]},
        status=200,
    )
    reviewer.post(
        f"/v1/repairs/{repair['id']}/agency-review",
        {"decision": "approve", "comment": "credited", "version": repair["version"]},
        status=200,
    )
    # 1 + 4 - 1 + 7 = 11: a suspension, caused by a decision at B
    suspending = inspector.violation(
        person, hospital_b, decided_on=today, behaviour_code="B3-01", case_ref=code("SECRET-B-")
    )
    assert webhooks.fan_out(session, now=utc_now()) > 0
    session.flush()
    return {
        "admin": admin,
        "hr_a": hr_a,
        "person": person,
        "a": hospital_a,
        "b": hospital_b,
        "small_a": small_a,
        "b_ids": {first_b["id"], suspending["id"]},
        "appeal": appeal["id"],
        "repair": repair["id"],
        "registration_b": registration_b["id"],
        "subscription": subscription.id,
    }


def _reads(world) -> dict[str, object]:
    hr, person, a = world["hr_a"], world["person"], world["a"]
    return {
        "practitioner": hr.get(f"/v1/practitioners/{person}"),
        "standing": hr.get(f"/v1/practitioners/{person}/standing"),
        "history": hr.get(f"/v1/practitioners/{person}/history", query={"limit": 500}),
        "eligibility": hr.get(f"/v1/practitioners/{person}/eligibility"),
        "eligibility at A": hr.get(f"/v1/practitioners/{person}/eligibility", query={"institution_code": a}),
        "batch": hr.post("/v1/eligibility/batch", {"practitioner_codes": [person]}, status=200),
        "roster": hr.get(f"/v1/institutions/{a}/eligibility"),
        "repairs": hr.get("/v1/repairs", query={"limit": 500}),
        "measures": hr.get("/v1/measures", query={"limit": 500}),
        "events": hr.get("/v1/events", query={"limit": 500}),
        "webhooks": hr.get("/v1/webhooks"),
        "deliveries": hr.get(f"/v1/webhooks/{world['subscription']}/deliveries", query={"limit": 500}),
    }


def _ids(value, name: str) -> set:
    """Every value of a key `name` anywhere in a JSON document."""
    found, stack = set(), [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if name in item:
                found.add(item[name])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def test_no_list_an_hr_system_reads_shows_anything_of_another_institution(world):
    reads = _reads(world)
    for name, body in reads.items():
        text = json.dumps(body, ensure_ascii=False)
        for secret in (*B_SECRETS, world["b"]):
            assert secret not in text, (name, secret)
        assert not (_ids(body, "violation_id") & world["b_ids"]), name
        assert world["appeal"] not in _ids(body, "appeal_id"), name
        assert world["repair"] not in _ids(body, "repair_id") | _ids(reads["repairs"], "id"), name
        assert world["registration_b"] not in _ids(body, "registration_id"), name
    assert reads["practitioner"]["registrations"][0]["institution_code"] == world["a"]
    assert len(reads["practitioner"]["registrations"]) == 1


def test_every_item_an_hr_system_lists_it_could_read_one_by_one(world):
    hr = world["hr_a"]
    reads = _reads(world)
    for violation_id in _ids(reads, "violation_id") - {None}:
        hr.get(f"/v1/violations/{violation_id}")
    for repair_id in _ids(reads["history"], "repair_id") | {r["id"] for r in reads["repairs"]["items"]}:
        hr.get(f"/v1/repairs/{repair_id}")
    for appeal_id in _ids(reads["history"], "appeal_id"):
        hr.get(f"/v1/appeals/{appeal_id}")
    # and what it cannot read one by one is 404
    for violation_id in world["b_ids"]:
        hr.get(f"/v1/violations/{violation_id}", status=404)
    hr.get(f"/v1/appeals/{world['appeal']}", status=404)
    hr.get(f"/v1/repairs/{world['repair']}", status=404)


def test_status_bars_and_totals_stay_national(world):
    reads = _reads(world)
    full = world["admin"].get(f"/v1/practitioners/{world['person']}/standing")
    standing = reads["standing"]
    assert standing["status"] == "suspended" == reads["eligibility"]["status"]
    for key in ("points_total", "tier", "status", "status_until"):
        assert standing[key] == full[key]
    [sanction] = standing["sanctions"]
    assert (sanction["start"], sanction["end"], sanction["violation_id"]) == (
        full["sanctions"][0]["start"],
        full["sanctions"][0]["end"],
        None,  # the decision that imposed it was made at B
    )
    assert [item["kind"] for item in reads["history"]["items"]].count("sanction") == 1


def test_actors_outside_the_institution_are_named_by_role(world):
    history = world["hr_a"].get(f"/v1/practitioners/{world['person']}/history", query={"limit": 500})
    by = {item["by"] for item in history["items"]}
    assert "KEYNAME-B" not in json.dumps(history)
    # A's file shows A's registration (by the admin) and A's decision (by an inspector): the agency
    assert by == {"agency", "rules"}


def test_the_agency_reads_the_whole_file_with_key_names(world):
    history = world["admin"].get(f"/v1/practitioners/{world['person']}/history", query={"limit": 500})
    text = json.dumps(history)
    assert "KEYNAME-B" in text and world["b"] in text
    assert world["b_ids"] <= _ids(history, "violation_id")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/practitioners/{person}/eligibility?institution_code={b}", None),
        ("POST", "/v1/eligibility/batch", {"practitioner_codes": ["{person}"], "institution_code": "{b}"}),
        ("GET", "/v1/measures?institution_code={b}", None),
        ("GET", "/v1/institutions/{b}/eligibility", None),
        ("GET", "/v1/institutions/{b}", None),
    ],
)
def test_asking_about_another_institution_is_404(world, method, path, body):
    names = {"person": world["person"], "b": world["b"]}
    if body is not None:
        body = json.loads(json.dumps(body).replace("{person}", names["person"]).replace("{b}", names["b"]))
    response = world["hr_a"].client.open(
        path.format(**names), method=method, json=body, headers=world["hr_a"].headers
    )
    assert response.status_code == 404, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
