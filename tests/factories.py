"""Small builders with defaults for tests. Codes are unique per call so committed tests never clash."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace

from sqlalchemy.orm import sessionmaker

from points_service.persistence.engine import transaction
from points_service.rules.identifiers import with_check_character
from points_service.services.keys import CreateKey, create_key

NOW = dt.datetime(2026, 11, 23, 4, 0, tzinfo=dt.UTC)
# practitioner code -> the national ID number it was created with, so that any key can register the
# person as an HR system must: by code and number together
ID_NUMBERS: dict[str, str] = {}


def new_id_number() -> str:
    """A valid number unlikely to be drawn twice in a run: a birth day in 1960–1999 and a sequence
    number, about 14.6 million combinations (committed tests share one database)."""
    draw = uuid.uuid4().int
    born = dt.date(1960, 1, 1) + dt.timedelta(days=draw % 14_600)
    return with_check_character(f"130102{born:%Y%m%d}{(draw // 14_600) % 1000:03d}")


def joined(runtime, connection):
    """The app's runtime with every request, read or write, in savepoints of the test's transaction."""
    sessions = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    return replace(runtime, sessions=sessions, primary_reads=sessions)


def code(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12].upper()}"


def make_key(
    sessions_or_session, role: str, *, institution_code=None, practitioner_code=None, expires_at=None
) -> str:
    cmd = CreateKey(
        role=role,
        name=f"test-{role}",
        institution_code=institution_code,
        practitioner_code=practitioner_code,
        expires_at=expires_at,
    )
    if hasattr(sessions_or_session, "execute"):
        return create_key(sessions_or_session, cmd, now=NOW)[1]
    with transaction(sessions_or_session, write=True) as session:
        return create_key(session, cmd, now=NOW)[1]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Api:
    """A thin client for the HTTP API in tests: posts JSON, asserts statuses, returns bodies."""

    def __init__(self, client, key: str):
        self.client = client
        self.headers = auth(key)

    def post(self, path: str, body, *, status: int | tuple[int, ...] = 201, headers=None):
        response = self.client.post(path, json=body, headers={**self.headers, **(headers or {})})
        expected = status if isinstance(status, tuple) else (status,)
        assert response.status_code in expected, response.get_data(as_text=True)
        return response.get_json()

    def get(self, path: str, *, status: int = 200, query=None):
        response = self.client.get(path, headers=self.headers, query_string=query)
        assert response.status_code == status, response.get_data(as_text=True)
        return response.get_json()

    def institution(self, *, region_code="130100", kind="medical_institution", code_=None) -> str:
        c = code_ or code("H")
        self.post(
            "/v1/institutions", {"code": c, "name": f"Hospital {c}", "kind": kind, "region_code": region_code}
        )
        return c

    def practitioner(self, *, category="physician", code_=None) -> str:
        c = code_ or code("P")
        number = new_id_number()
        self.post(
            "/v1/practitioners", {"code": c, "name": f"Person {c}", "id_number": number, "category": category}
        )
        ID_NUMBERS[c] = number
        return c

    def register(self, practitioner: str, institution: str, start="2025-01-01", **kw):
        body = {"institution_code": institution, "start_date": start}
        if practitioner in ID_NUMBERS:
            body["id_number"] = ID_NUMBERS[practitioner]
        return self.post(f"/v1/practitioners/{practitioner}/registrations", body, **kw)

    def violation(
        self,
        practitioner: str,
        institution: str,
        *,
        decided_on="2026-04-10",
        occurred_on=None,
        behaviour_code="B1-01",
        responsibility="general",
        points=None,
        case_ref=None,
        status=201,
        **extra,
    ):
        body = {
            "case_ref": case_ref or code("CASE-"),
            "practitioner_code": practitioner,
            "institution_code": institution,
            "behaviour_code": behaviour_code,
            "responsibility": responsibility,
            "occurred_on": occurred_on or decided_on,
            "decided_on": decided_on,
            **extra,
        }
        if points is not None:
            body["points"] = points
        return self.post("/v1/violations", body, status=status)

    def person(self, *, region_code="130100", start="2025-01-01") -> tuple[str, str]:
        """A practitioner registered at a new institution: (practitioner_code, institution_code)."""
        inst = self.institution(region_code=region_code)
        person = self.practitioner()
        self.register(person, inst, start)
        return person, inst


def approve_repair(hr: Api, reviewer: Api, repair: dict) -> dict:
    """An application approved by its institution, then by the agency; the agency's answer."""
    first = hr.post(
        f"/v1/repairs/{repair['id']}/institution-review",
        {"decision": "approve", "comment": "certificate checked", "version": repair["version"]},
        status=200,
    )
    return reviewer.post(
        f"/v1/repairs/{repair['id']}/agency-review",
        {"decision": "approve", "comment": "ok", "version": first["version"]},
        status=200,
    )


def assert_problem(response, status: int, slug: str | None = None) -> dict:
    """An RFC 9457 problem+json answer with this status (and type slug), tied to its request id."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    assert body["request_id"] == response.headers["X-Request-ID"]
    if slug is not None:
        assert body["type"] == f"urn:points-service:problem:{slug}"
    return body
