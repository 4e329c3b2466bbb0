"""The audit trail: every write leaves one row, in its own transaction, with who,
what, when, the request id and a digest of the change; admin and reviewer read it back; nobody
can change it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field

import pytest
from factories import Api, auth, code, make_key, new_id_number
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from points_service.clock import local_today, utc_now
from points_service.persistence.models import ApiKey, AuditEvent
from points_service.services.audit import canonical_json, digest

PROBLEM = "application/problem+json"


def _key_id(session, secret: str) -> int:
    return session.scalar(
        select(ApiKey.id).where(ApiKey.key_hash == hashlib.sha256(secret.encode()).hexdigest())
    )


@dataclass
class Actor:
    api: Api
    id: int
    role: str

    @property
    def actor(self) -> str:
        return f"key:{self.id}:test-{self.role}"


@dataclass
class Trail:
    """Six writes by four roles, each with the response's X-Request-ID and the audit row expected."""

    admin: Actor
    hr: Actor
    inspector: Actor
    person: Actor
    person_code: str
    hospital: str
    id_number: str
    writes: list[dict] = field(default_factory=list)


def _actor(client, session, role: str, **scope) -> Actor:
    secret = make_key(session, role, **scope)
    return Actor(Api(client, secret), _key_id(session, secret), role)


def _write(client, trail: Trail, who: Actor, path: str, body: dict, *, rid: str | None, expect: dict) -> dict:
    headers = {**who.api.headers, **({"X-Request-ID": rid} if rid else {})}
    before = utc_now()
    response = client.post(path, json=body, headers=headers)
    after = utc_now()
    assert response.status_code == 201, response.get_data(as_text=True)
    request_id = response.headers["X-Request-ID"]
    if rid:
        assert request_id == rid
    trail.writes.append(
        {**expect, "actor": who.actor, "role": who.role, "request_id": request_id, "window": (before, after)}
    )
    return response.get_json()


@pytest.fixture
def trail(client, session) -> Trail:
    admin = _actor(client, session, "admin")
    inspector = _actor(client, session, "inspector")
    hospital, person, id_number = code("H"), code("P"), new_id_number()
    trail = Trail(admin, None, inspector, None, person, hospital, id_number)  # type: ignore[arg-type]
    _write(
        client,
        trail,
        admin,
        "/v1/institutions",
        {"code": hospital, "name": "Hospital", "kind": "medical_institution", "region_code": "130100"},
        rid="audit-institution",
        expect={"action": "institution.created", "object_type": "institution", "object_id": hospital},
    )
    created = _write(
        client,
        trail,
        admin,
        "/v1/practitioners",
        {"code": person, "name": "Wang Wu", "id_number": id_number, "category": "nurse"},
        rid=None,  # the service's own request id
        expect={"action": "practitioner.created", "object_type": "practitioner", "object_id": person},
    )
    assert created["id_number"] != id_number
    trail.hr = _actor(client, session, "hr_system", institution_code=hospital)
    trail.person = _actor(client, session, "practitioner", practitioner_code=person)
    registration = _write(
        client,
        trail,
        trail.hr,
        f"/v1/practitioners/{person}/registrations",
        {"institution_code": hospital, "start_date": "2025-01-01", "id_number": id_number},
        rid="audit-registration",
        expect={"action": "registration.created", "object_type": "registration"},
    )
    trail.writes[-1]["object_id"] = str(registration["id"])
    today = local_today().isoformat()
    violation = _write(
        client,
        trail,
        inspector,
        "/v1/violations",
        {
            "case_ref": code("CASE-"),
            "practitioner_code": person,
            "institution_code": hospital,
            "behaviour_code": "B2-01",
            "responsibility": "general",
            "occurred_on": today,
            "decided_on": today,
        },
        rid="audit-violation",
        expect={"action": "violation.recorded", "object_type": "violation"},
    )
    trail.writes[-1]["object_id"] = str(violation["id"])
    repair = _write(
        client,
        trail,
        trail.hr,
        "/v1/repairs",
        {
            "practitioner_code": person,
            "institution_code": hospital,
            "activity": "offline_training",
            "completed_on": today,
            "evidence_ref": "certificate 0042",
        },
        rid=None,
        expect={"action": "repair.submitted", "object_type": "repair"},
    )
    trail.writes[-1]["object_id"] = str(repair["id"])
    appeal = _write(
        client,
        trail,
        trail.person,
        f"/v1/violations/{violation['id']}/appeals",
        {"reason": "I was on leave that week"},
        rid="audit-appeal",
        expect={"action": "appeal.filed", "object_type": "appeal"},
    )
    trail.writes[-1]["object_id"] = str(appeal["id"])
    return trail


def _rows(session, **where) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id)
    for name, value in where.items():
        query = query.where(getattr(AuditEvent, name) == value)
    return list(session.scalars(query))


# -- every write, in its transaction --------------------------------------------------------------


def test_every_write_leaves_exactly_one_audit_row_with_who_what_when_and_the_request_id(session, trail):
    assert [w["action"] for w in trail.writes] == [
        "institution.created",
        "practitioner.created",
        "registration.created",
        "violation.recorded",
        "repair.submitted",
        "appeal.filed",
    ]
    for write in trail.writes:
        rows = _rows(session, request_id=write["request_id"])
        assert len(rows) == 1, write["action"]
        (row,) = rows
        assert (row.actor, row.role, row.action, row.object_type, row.object_id) == (
            write["actor"],
            write["role"],
            write["action"],
            write["object_type"],
            write["object_id"],
        )
        assert re.fullmatch(r"key:\d+:test-[a-z_]+", row.actor)
        before, after = write["window"]
        assert before <= row.at <= after
        assert row.digest == digest(row.detail)
        assert row.digest == hashlib.sha256(canonical_json(row.detail).encode("utf-8")).hexdigest()
    # the generated request ids are the 32-hex ones the responses carried
    generated = [w["request_id"] for w in trail.writes if not w["request_id"].startswith("audit-")]
    assert len(generated) == 2 and all(re.fullmatch(r"[0-9a-f]{32}", r) for r in generated)


def test_the_audit_detail_is_the_change_itself(session, trail):
    (institution,) = _rows(session, request_id="audit-institution")
    assert institution.detail == {
        "code": trail.hospital,
        "name": "Hospital",
        "kind": "medical_institution",
        "region_code": "130100",
    }
    (registration,) = _rows(session, request_id="audit-registration")
    assert (
        registration.detail.items()
        >= {
            "practitioner_code": trail.person_code,
            "institution_code": trail.hospital,
            "start_date": "2025-01-01",
        }.items()
    )
    (violation,) = _rows(session, request_id="audit-violation")
    assert (
        violation.detail.items()
        >= {
            "practitioner_code": trail.person_code,
            "institution_code": trail.hospital,
            "behaviour_code": "B2-01",
            "points": 4,
        }.items()
    )


def test_the_audit_never_holds_the_raw_national_id_only_its_masked_form(client, session, trail):
    (row,) = _rows(session, action="practitioner.created", object_id=trail.person_code)
    raw = trail.id_number
    assert row.detail["id_number"] == f"{raw[0]}{'*' * 16}{raw[-1]}"
    everything = trail.admin.api.get("/v1/audit", query={"limit": 500, "actor": trail.admin.actor})
    since = trail.writes[0]["window"][0]
    details = session.scalars(select(AuditEvent.detail).where(AuditEvent.at >= since)).all()
    dumped = json.dumps(details) + json.dumps(everything)
    assert raw not in dumped and raw.lower() not in dumped


def _wrong_check_digit() -> str:
    valid = new_id_number()
    return valid[:17] + ("0" if valid[17] != "0" else "1")


def test_a_refused_write_leaves_no_audit_row(client, session, trail):
    actors = {trail.admin.actor, trail.inspector.actor}

    def by_these_actors() -> int:
        return session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.actor.in_(actors))
        )

    count_before = by_these_actors()
    future = (local_today() + dt.timedelta(days=3)).isoformat()
    refused = [
        # 422: decided in the future (rule 6); an invalid national ID; a schema error
        (
            trail.inspector,
            "/v1/violations",
            {
                "case_ref": code("CASE-"),
                "practitioner_code": trail.person_code,
                "institution_code": trail.hospital,
                "behaviour_code": "B1-01",
                "responsibility": "general",
                "occurred_on": future,
                "decided_on": future,
            },
            422,
        ),
        (
            trail.admin,
            "/v1/practitioners",
            {"code": code("P"), "name": "X", "id_number": _wrong_check_digit(), "category": "nurse"},
            422,
        ),
        (trail.admin, "/v1/institutions", {"code": code("H")}, 422),
        # 409: the same code with other data; 403: a role that may not write this
        (
            trail.admin,
            "/v1/practitioners",
            {"code": trail.person_code, "name": "Other", "id_number": trail.id_number, "category": "nurse"},
            409,
        ),
        (trail.inspector, "/v1/institutions", {"code": code("H"), "name": "H", "kind": "pharmacy"}, 403),
    ]
    for n, (who, path, body, status) in enumerate(refused):
        rid = f"audit-refused-{n}"
        response = client.post(path, json=body, headers={**who.api.headers, "X-Request-ID": rid})
        assert response.status_code == status, response.get_data(as_text=True)
        assert response.mimetype == PROBLEM
        assert _rows(session, request_id=rid) == []
    assert by_these_actors() == count_before


# -- reading it back ------------------------------------------------------------------------------


def _page(api: Api, **query) -> dict:
    return api.get("/v1/audit", query=query)


def test_the_audit_is_filtered_by_actor(trail):
    reader = trail.admin.api
    by_admin = _page(reader, actor=f"key:{trail.admin.id}:")["items"]
    assert [i["action"] for i in by_admin] == ["institution.created", "practitioner.created"]
    by_hr = _page(reader, actor=f"key:{trail.hr.id}:")["items"]
    assert [i["action"] for i in by_hr] == ["registration.created", "repair.submitted"]
    assert {i["actor"] for i in by_hr} == {trail.hr.actor}
    assert {i["role"] for i in by_hr} == {"hr_system"}
    first = by_admin[0]
    assert set(first) == {
        "id",
        "at",
        "actor",
        "role",
        "action",
        "object_type",
        "object_id",
        "request_id",
        "digest",
        "detail",
    }
    assert first["request_id"] == "audit-institution"
    assert first["digest"] == digest(first["detail"])


def test_the_audit_is_filtered_by_object_type_and_by_type_and_id(trail):
    reader = trail.admin.api
    violation = next(w for w in trail.writes if w["object_type"] == "violation")
    (item,) = _page(reader, object=f"violation/{violation['object_id']}")["items"]
    assert (item["action"], item["request_id"]) == ("violation.recorded", "audit-violation")

    since = trail.writes[0]["window"][0].isoformat()
    by_type = _page(reader, object="violation", since=since, limit=500)["items"]
    assert {i["object_type"] for i in by_type} == {"violation"}
    assert item["id"] in {i["id"] for i in by_type}
    # type and actor together
    (mine,) = _page(reader, object="appeal", actor=trail.person.actor)["items"]
    assert (mine["action"], mine["role"]) == ("appeal.filed", "practitioner")
    assert _page(reader, object=f"practitioner/{trail.person_code}")["items"][0]["action"] == (
        "practitioner.created"
    )
    assert _page(reader, object="violation/0")["items"] == []


def test_the_audit_is_filtered_by_since_in_any_rfc3339_offset(trail):
    reader = trail.admin.api
    first, second = _page(reader, actor=f"key:{trail.admin.id}:")["items"]
    second_at = dt.datetime.fromisoformat(second["at"])
    assert dt.datetime.fromisoformat(first["at"]) < second_at
    since = _page(reader, actor=f"key:{trail.admin.id}:", since=second["at"])["items"]
    assert [i["id"] for i in since] == [second["id"]]
    shanghai = second_at.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat()
    assert shanghai.endswith("+08:00")
    assert [i["id"] for i in _page(reader, actor=f"key:{trail.admin.id}:", since=shanghai)["items"]] == [
        second["id"]
    ]
    later = (second_at + dt.timedelta(microseconds=1)).isoformat()
    assert _page(reader, actor=f"key:{trail.admin.id}:", since=later)["items"] == []


def test_the_audit_is_paginated_oldest_first(trail):
    reader = trail.admin.api
    everything = _page(reader, actor="key:", since=trail.writes[0]["window"][0].isoformat(), limit=500)
    assert everything["next_cursor"] is None
    ids = [i["id"] for i in everything["items"]]
    assert len(ids) >= len(trail.writes)
    seen, cursor = [], None
    while True:
        query = {"actor": "key:", "since": trail.writes[0]["window"][0].isoformat(), "limit": 2}
        page = _page(reader, **query, **({"cursor": cursor} if cursor else {}))
        assert len(page["items"]) <= 2
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids == sorted(ids)


@pytest.mark.parametrize(
    "query",
    [
        {"since": "2026-01-01T00:00:00"},  # no offset: ambiguous
        {"since": "yesterday"},
        {"limit": 0},
        {"cursor": "not-a-cursor!"},
        {"who": "me"},
    ],
)
def test_a_bad_audit_query_is_a_422(client, trail, query):
    response = client.get("/v1/audit", query_string=query, headers=trail.admin.api.headers)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM


def test_only_admin_and_reviewer_read_the_audit(client, session, trail):
    reviewer = _actor(client, session, "reviewer")
    assert reviewer.api.get("/v1/audit", query={"actor": trail.admin.actor})["items"]
    assert trail.admin.api.get("/v1/audit", query={"actor": trail.admin.actor})["items"]
    for who in (trail.inspector, trail.hr, trail.person):
        response = client.get("/v1/audit", headers=who.api.headers)
        assert response.status_code == 403, who.role
        assert response.mimetype == PROBLEM
        assert response.get_json()["type"] == "urn:points-service:problem:forbidden"
    anonymous = client.get("/v1/audit")
    assert anonymous.status_code == 401
    assert anonymous.get_json()["type"] == "urn:points-service:problem:not-authenticated"
    assert client.get("/v1/audit", headers=auth("pts_not-a-key")).status_code == 401


# -- append-only ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET actor = 'someone-else' WHERE id = :id",
        "UPDATE audit_event SET detail = NULL WHERE id = :id",
        "DELETE FROM audit_event WHERE id = :id",
    ],
)
def test_audit_rows_cannot_be_updated_or_deleted(session, trail, statement):
    (row,) = _rows(session, request_id="audit-violation")
    with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
        session.execute(text(statement), {"id": row.id})
    session.expire_all()
    (again,) = _rows(session, request_id="audit-violation")
    assert (again.id, again.actor, again.detail, again.digest) == (row.id, row.actor, row.detail, row.digest)
