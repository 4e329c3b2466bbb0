"""No input reaches a 500: what a careless or hostile client sends is a 400 or 422 problem naming
the field, and changes nothing.

The named cases first (each was a 500 or was wrongly accepted), then a hypothesis fuzz over every
operation of the committed spec that puts one hostile value at a time into a body field, a query
parameter or a path code of an otherwise plausible request.
"""

from __future__ import annotations

import ipaddress
import json
import urllib.parse
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from factories import Api, make_key, new_id_number
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from points_service.api.base import MAX_JSON_DEPTH, encode_cursor
from points_service.clock import local_today
from points_service.persistence.models import AuditEvent, Institution, Violation
from points_service.services import webhooks

SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "openapi.yaml").read_text("utf-8"))
PROBLEM = "application/problem+json"


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture(autouse=True)
def no_dns(monkeypatch):
    """Webhook hosts are resolved at creation; nothing here may ask a resolver (there is none)."""

    def resolve(host: str, port: int):
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            raise OSError("no resolver in the test sandbox") from None

    monkeypatch.setattr(webhooks, "resolve", resolve)


def assert_refused(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    if field is not None:
        assert field in body.get("errors", {}), body
    return body


# -- named cases ---------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5_000, 100_000])
def test_json_nested_deeper_than_the_limit_is_a_400(admin, depth):
    body = {"code": "HDEEP1", "name": nested(depth), "kind": "medical_institution", "region_code": "130100"}
    response = admin.client.post(
        "/v1/institutions",
        data=json.dumps(body) if depth < 1000 else '{"name": ' + "[" * depth + "]" * depth + "}",
        headers={**admin.headers, "Content-Type": "application/json"},
    )
    problem = assert_refused(response, 400)
    assert "nested" in problem["detail"] or "JSON" in problem["detail"]


def test_a_deep_body_with_an_idempotency_key_is_a_400_too(admin):
    response = admin.client.post(
        "/v1/institutions",
        data='{"name": ' + "[" * 5000 + "]" * 5000 + "}",
        headers={**admin.headers, "Content-Type": "application/json", "Idempotency-Key": "deep-1"},
    )
    assert_refused(response, 400)


def test_nesting_at_the_limit_is_parsed_and_then_judged_by_the_schema(admin):
    body = {
        "code": "HDEEP2",
        "name": nested(MAX_JSON_DEPTH - 1),
        "kind": "medical_institution",
        "region_code": "130100",
    }
    assert_refused(admin.client.post("/v1/institutions", json=body, headers=admin.headers), 422, "name")


@pytest.mark.parametrize("value", ["\ud800", "a\udfffb"], ids=["lone high", "lone low"])
def test_a_lone_surrogate_is_a_422_at_its_field_and_nothing_is_written(admin, session, value):
    raw = json.dumps({"code": "HSUR1", "name": value, "kind": "medical_institution", "region_code": "130100"})
    assert "\\ud" in raw  # sent as the JSON escape, as a careless client would
    response = admin.client.post(
        "/v1/institutions", data=raw, headers={**admin.headers, "Content-Type": "application/json"}
    )
    assert_refused(response, 422, "name")
    stored = select(func.count()).select_from(Institution).where(Institution.code == "HSUR1")
    assert session.scalar(stored) == 0


HUGE_CURSORS = [
    ("/v1/repairs", "cursor", encode_cursor(2**63)),
    ("/v1/audit", "cursor", encode_cursor(2**64)),
    ("/v1/measures", "cursor", encode_cursor(-1)),
    ("/v1/events", "after", encode_cursor([2**63, 1])),
    ("/v1/events", "after", encode_cursor([1, 2**70])),
    ("/v1/events", "after", encode_cursor([1, 2, 3])),
    ("/v1/repairs", "cursor", encode_cursor(True)),
    ("/v1/measures", "cursor", "not base64 at all!"),
]


@pytest.mark.parametrize(("path", "name", "cursor"), HUGE_CURSORS)
def test_a_cursor_this_service_did_not_issue_is_a_422_naming_it(admin, path, name, cursor):
    response = admin.client.get(path, query_string={name: cursor}, headers=admin.headers)
    assert_refused(response, 422, name)


def test_a_delivery_cursor_beyond_bigint_is_a_422(admin, app):
    runtime = app.extensions["points_service"]
    app.extensions["points_service"] = replace(
        runtime, settings=replace(runtime.settings, webhook_allow_private=True)
    )
    try:
        hook = admin.post(
            "/v1/webhooks", {"url": "http://127.0.0.1:9/x", "event_types": ["violation.recorded"]}
        )
    finally:
        app.extensions["points_service"] = runtime
    response = admin.client.get(
        f"/v1/webhooks/{hook['id']}/deliveries",
        query_string={"cursor": encode_cursor(2**64)},
        headers=admin.headers,
    )
    assert_refused(response, 422, "cursor")


def test_a_roster_cursor_must_be_a_code(admin):
    inst = admin.institution()
    for forged in (encode_cursor(2**64), encode_cursor(["a"]), encode_cursor("x" * 200)):
        response = admin.client.get(
            f"/v1/institutions/{inst}/eligibility", query_string={"cursor": forged}, headers=admin.headers
        )
        assert_refused(response, 422, "cursor")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("20261120", "YYYY-MM-DD"),
        ("2026-1-20", "YYYY-MM-DD"),
        ("2026-11-20T00:00:00", "YYYY-MM-DD"),
        ("2026-02-30", "calendar"),
        ("0001-01-01", "1990-01-01"),
        ("1989-12-31", "1990-01-01"),
        ("9999-12-31", "2999-12-31"),
    ],
)
def test_a_decision_date_is_iso_and_not_before_1990(admin, value, message):
    person, inst = admin.person()
    response = admin.client.post(
        "/v1/violations",
        json={
            "case_ref": "HB-DATE-1",
            "practitioner_code": person,
            "institution_code": inst,
            "behaviour_code": "B1-01",
            "responsibility": "general",
            "occurred_on": "2026-01-05",
            "decided_on": value,
        },
        headers=admin.headers,
    )
    problem = assert_refused(response, 422, "decided_on")
    assert message in " ".join(problem["errors"]["decided_on"])


def test_a_registration_start_and_a_repair_completion_are_not_before_1990(admin):
    person, inst = admin.person()
    other = admin.institution()
    response = admin.client.post(
        f"/v1/practitioners/{person}/registrations",
        json={"institution_code": other, "start_date": "0001-01-01"},
        headers=admin.headers,
    )
    assert_refused(response, 422, "start_date")
    response = admin.client.post(
        "/v1/repairs",
        json={
            "practitioner_code": person,
            "institution_code": inst,
            "activity": "online_study",
            "completed_on": "0001-01-01",
            "evidence_ref": "cert-1",
        },
        headers=admin.headers,
    )
    assert_refused(response, 422, "completed_on")


@pytest.mark.parametrize(
    "case_ref",
    ["   ", "\u200b", "\u200bHB-1", "HB-1\u200d", " HB-1", "HB-1\t", "\u3000", "HB\n1"],
    ids=[
        "spaces",
        "zero-width space",
        "zero-width prefix",
        "zero-width joiner",
        "leading space",
        "trailing tab",
        "ideographic space",
        "newline",
    ],
)
def test_a_case_ref_is_printable_and_not_blank(admin, session, case_ref):
    person, inst = admin.person()
    before = session.scalar(select(func.count()).select_from(Violation))
    response = admin.client.post(
        "/v1/violations",
        json={
            "case_ref": case_ref,
            "practitioner_code": person,
            "institution_code": inst,
            "behaviour_code": "B1-01",
            "responsibility": "general",
            "occurred_on": "2026-01-05",
            "decided_on": "2026-01-05",
        },
        headers=admin.headers,
    )
    assert_refused(response, 422, "case_ref")
    assert session.scalar(select(func.count()).select_from(Violation)) == before


@pytest.mark.parametrize("region", ["000000", "990101", "100000", "13010", "13O100"])
def test_a_region_code_starts_with_a_real_province(admin, region):
    response = admin.client.post(
        "/v1/institutions",
        json={"code": "HREG1", "name": "A hospital", "kind": "medical_institution", "region_code": region},
        headers=admin.headers,
    )
    assert_refused(response, 422, "region_code")


@pytest.mark.parametrize("region", ["110101", "130100", "630100", "820000"])
def test_region_codes_of_real_provinces_are_accepted(admin, region):
    admin.institution(region_code=region)


def test_an_audit_instant_at_the_end_of_time_is_a_422_not_an_overflow(admin):
    response = admin.client.get(
        "/v1/audit", query_string={"since": "9999-12-31T23:59:59-14:00"}, headers=admin.headers
    )
    assert_refused(response, 422, "since")


def test_a_name_of_only_spaces_is_refused(admin):
    response = admin.client.post(
        "/v1/practitioners",
        json={"code": "PBLANK1", "name": "  \u3000", "id_number": new_id_number(), "category": "physician"},
        headers=admin.headers,
    )
    assert_refused(response, 422, "name")


# -- the fuzz: one hostile value at a time, every operation ---------------------------------------


class Raw(str):
    """A body sent as this exact text, not encoded (JSON nested deeper than the encoder allows)."""


DEEP = Raw("[" * 5_000 + "]" * 5_000)
HOSTILE = [
    "\ud800",
    "a\udc00",
    "\x00",
    "\u200b",
    "   ",
    "\u3000",
    "x" * 5000,
    "20261120",
    "0001-01-01",
    "9999-12-31",
    "2026-02-30",
    "-1",
    "%00",
    "../../etc/passwd",
    "' OR 1=1 --",
    encode_cursor(2**64),
    encode_cursor([2**63, 2**63]),
    encode_cursor(-5),
    2**63,
    -(2**63) - 1,
    10**30,
    1.5,
    True,
    None,
    [],
    {"nested": {"deeper": ["\ud800"]}},
    nested(MAX_JSON_DEPTH + 5),
    DEEP,
]
# and whatever hypothesis draws beside them
RANDOM = st.one_of(st.text(max_size=30), st.integers(), st.floats(allow_nan=False), st.booleans())

OPERATIONS = [
    (method.upper(), path, operation)
    for path, item in SPEC["paths"].items()
    for method, operation in item.items()
    if method in ("get", "post", "put", "patch", "delete") and path.startswith("/v1/")
]


OPERATION_IDS = [f"{m} {p}" for m, p, _ in OPERATIONS]


def _resolve(schema: dict) -> dict:
    if "$ref" in schema:
        node: Any = SPEC
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        return node
    return schema


def _plausible(name: str, schema: dict, world: dict) -> Any:
    """A value that passes the schema, so that the one hostile value is what the request tests."""
    schema = _resolve(schema)
    if name in ("practitioner_code", "code"):
        return world["person"]
    if name == "institution_code":
        return world["institution"]
    if name == "practitioner_codes":
        return [world["person"]]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if schema.get("format") == "date":
        return local_today().isoformat()
    if kind == "integer":
        return max(schema.get("minimum", 1), 1)
    if kind == "array":
        return [_plausible(name, schema.get("items", {}), world)]
    if kind == "boolean":
        return True
    if name == "id_number":
        return new_id_number()
    if name == "url":
        return "https://hooks.example.com/x"
    return "plausible"


def _request(method: str, path: str, operation: dict, world: dict, target: str, value: Any):
    body = None
    body_schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    if body_schema:
        schema = _resolve(body_schema["schema"])
        body = {
            name: _plausible(name, prop, world)
            for name, prop in schema.get("properties", {}).items()
            if name in schema.get("required", [])
        }
    query = {p["name"]: None for p in _parameters(operation) if p["in"] == "query"}
    path_values = {
        p["name"]: (world["institution"] if path.startswith("/v1/institutions/") else world["person"])
        if p["schema"].get("type") == "string"
        else 1
        for p in _path_parameters(path, operation)
    }
    if target == "body" and body is not None:
        body = value
    elif target.startswith("body.") and body is not None:
        body[target[5:]] = value
    elif target.startswith("query."):
        query[target[6:]] = value if isinstance(value, str) else json.dumps(value)[:200]
    elif target.startswith("path."):
        path_values[target[5:]] = _quote(str(value))
    url = path
    for name, value_ in path_values.items():
        url = url.replace("{" + name + "}", str(value_))
    query_string = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in query.items() if v is not None)
    return method, url, body, query_string


def _quote(value: str) -> str:
    """Percent-encoded as a client would send it, lone surrogates included (as their UTF-8 bytes)."""
    return urllib.parse.quote(value.encode("utf-8", "surrogatepass"), safe="")


def _parameters(operation: dict) -> list[dict]:
    return [_resolve(p) for p in operation.get("parameters", [])]


def _path_parameters(path: str, operation: dict) -> list[dict]:
    return [
        p
        for p in [*(_resolve(p) for p in SPEC["paths"][path].get("parameters", [])), *_parameters(operation)]
        if p["in"] == "path"
    ]


def _targets(path: str, operation: dict) -> list[str]:
    targets = []
    body_schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    if body_schema:
        targets.append("body")
        targets += [f"body.{name}" for name in _resolve(body_schema["schema"]).get("properties", {})]
    targets += [f"query.{p['name']}" for p in _parameters(operation) if p["in"] == "query"]
    targets += [
        f"path.{p['name']}" for p in _path_parameters(path, operation) if p["schema"].get("type") == "string"
    ]
    return targets


def _send(client, session, world: dict, method: str, path: str, operation: dict, target: str, value: Any):
    method_, url, body, query = _request(method, path, operation, world, target, value)
    role = "reviewer" if path.endswith(("/decision", "/agency-review")) else "admin"
    audit_before = session.scalar(select(func.count()).select_from(AuditEvent))
    if isinstance(body, Raw):
        data = str(body)
    elif target == "body" and isinstance(value, Raw):
        data = str(value)
    else:
        data = json.dumps(body) if body is not None else None
    if target.startswith("body.") and isinstance(value, Raw):
        data = data.replace(json.dumps(str(value)), str(value))
    response = client.open(
        url,
        method=method_,
        data=data,
        content_type="application/json" if data is not None else None,
        query_string=query,
        headers={"Authorization": f"Bearer {world[role]}"},
    )
    assert response.status_code < 500, (target, repr(value)[:80], response.get_data(as_text=True))
    if response.status_code >= 400:
        assert response.mimetype == PROBLEM, response.get_data(as_text=True)
        if response.status_code in (400, 422):
            assert session.scalar(select(func.count()).select_from(AuditEvent)) == audit_before


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS, ids=OPERATION_IDS)
def test_no_hostile_value_in_any_field_reaches_a_server_error(client, session, method, path, operation):
    world = _world(client, session)
    for target in _targets(path, operation):
        for value in HOSTILE:
            _send(client, session, world, method, path, operation, target, value)


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS, ids=OPERATION_IDS)
@settings(
    max_examples=15,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_random_value_in_any_field_reaches_a_server_error(client, session, method, path, operation, data):
    targets = _targets(path, operation)
    if targets:
        target = data.draw(st.sampled_from(targets), label="target")
        _send(client, session, _world(client, session), method, path, operation, target, data.draw(RANDOM))


_WORLDS: dict[int, dict] = {}


def _world(client, session) -> dict:
    """A person registered at an institution, and keys: made once per test's transaction."""
    key = id(session)
    if key not in _WORLDS:
        _WORLDS.clear()
        admin_key = make_key(session, "admin")
        api = Api(client, admin_key)
        person, institution = api.person()
        _WORLDS[key] = {
            "admin": admin_key,
            "reviewer": make_key(session, "reviewer"),
            "person": person,
            "institution": institution,
        }
    return _WORLDS[key]
