"""Contract fuzzing: schemathesis against the committed openapi.yaml, in process.

Every operation is fuzzed with valid (positive) and invalid (negative) data, sent with a valid key,
to the Flask app (WSGI) inside the test's rolled-back transaction. Each response must:

- never be a 5xx (`not_a_server_error`);
- use a documented status code, content type and schema (`status_code_conformance`,
  `content_type_conformance`, `response_schema_conformance`), and a status the operation documents
  explicitly, not only through `default` (`explicitly_documented_status`, below);
- refuse data the schema forbids (`negative_data_rejection`);
- be refused without a valid key where the spec declares bearerAuth (`ignored_auth`, which resends
  the request with no key and with a made-up key);
- be RFC 9457 problem+json whenever it is an error (`problem_json_errors`, below).

A small world is seeded per operation (an institution, two people registered there, two decisions
with an institution talk and a public notice, an appeal, two repair applications, a webhook with a
pending delivery), and hooks swap valid generated path values and body codes for the world's, so
reads and writes of existing objects answer 2xx too and their bodies are checked against the schema.

Runs are deterministic (derandomize) and small (MAX_EXAMPLES per operation). Each defect it has
found has a test below that reproduces it exactly (an xfail(strict) while it is open, and the fuzz
test steps around an open one with a comment naming it, so that it can look for others).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from factories import Api, make_key, new_id_number
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from openapi_schema_validator import OAS30Validator
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from points_service.clock import local_today, utc_now
from points_service.services import webhooks
from points_service.services.keys import authenticate

SPEC = Path(__file__).resolve().parents[2] / "openapi.yaml"
PROBLEM = "application/problem+json"
MAX_EXAMPLES = 25
PUBLIC_HOOK_HOST = "hooks.example.com"
# operations an admin may not perform (docs/api.md: the reviewer's); fuzzed with a reviewer key instead,
# so that the fuzzer gets past 403 to their bodies and logic
REVIEWER_ONLY = {"POST /v1/repairs/{repair_id}/agency-review", "POST /v1/appeals/{appeal_id}/decision"}

SCHEMA = schemathesis.openapi.from_path(SPEC)
SCHEMA.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    max_examples=MAX_EXAMPLES,
    deterministic=True,
    # NUL characters too, on both databases (see test_a_nul_character_is_a_client_error_on_every_database)
    allow_x00=True,
    # every case carries the valid key (below); requests without it, or with a made-up one, are
    # ignored_auth's probes (and the authorisation matrix's `none` column)
    with_security_parameters=False,
)

# what the seeded world holds, for the hooks below; filled per test by the `world` fixture
WORLD: dict[str, Any] = {}
# (operation, phase, mode) -> cases sent
CASES: Counter[tuple[str, str, str]] = Counter()
# (operation, status) -> responses
STATUSES: Counter[tuple[str, int]] = Counter()


# -- checks ----------------------------------------------------------------------------------------


@schemathesis.check
def problem_json_errors(ctx, response, case) -> bool | None:
    """Every 4xx/5xx is RFC 9457 problem+json with the members docs/api.md promises (404 and 405 too)."""
    if response.status_code < 400:
        return None
    values = [v for k, v in response.headers.items() if k.lower() == "content-type"] or [""]
    content_type = values[0][0] if isinstance(values[0], list) else values[0]
    assert content_type.split(";")[0].strip() == PROBLEM, (
        f"{response.status_code} answered with {content_type!r}, not {PROBLEM}"
    )
    body = response.json()
    assert isinstance(body, dict), body
    missing = {"type", "title", "status", "detail"} - set(body)
    assert not missing, f"problem lacks {sorted(missing)}: {body}"
    assert body["status"] == response.status_code, body
    return True


@schemathesis.check
def explicitly_documented_status(ctx, response, case) -> bool | None:
    """Stricter than status_code_conformance, which every status passes through `default`."""
    if case.method.upper() != case.operation.method.upper():
        return None  # another method sent to the path: 405 (or 200 for OPTIONS) is Flask's answer
    raw = case.operation.definition.raw
    documented = {int(code) for code in raw["responses"] if code.isdigit()}
    assert response.status_code in documented, (
        f"{response.status_code} is not documented for {case.operation.label}: {sorted(documented)}"
    )
    return True


@schemathesis.check
def record_status(ctx, response, case) -> bool | None:
    """Not a check: tallies the statuses seen per operation for the report."""
    STATUSES[(case.operation.label, response.status_code)] += 1
    return None


CHECKS = [
    record_status,
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
    problem_json_errors,
    explicitly_documented_status,
]


# -- hooks: realistic values -----------------------------------------------------------------------

# path ids stop at 2**63 - 1 (api.DatabaseId); a larger one the fuzzer draws anyway (for a negative
# case) is folded into range, so that it reaches the database rather than routing's 404
MAX_DB_INT = 2**63 - 1
SPEC_DICT = yaml.safe_load(SPEC.read_text("utf-8"))
# path parameter -> the world's values it may take
_PATH_WORLD = {
    "violation_id": "violation_ids",
    "appeal_id": "appeal_ids",
    "repair_id": "repair_ids",
    "measure_id": "measure_ids",
    "webhook_id": "webhook_ids",
    "institution_code": "institutions",
}
# body field -> the world's values it may take
_BODY_WORLD = {
    "practitioner_code": "people",
    "institution_code": "institutions",
    "version": "versions",
}
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
DATE_FIELDS = {"completed_on", "published_on", "decided_on", "occurred_on", "start_date", "end_date"}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _resolve_ref(ref: str) -> dict:
    node: Any = SPEC_DICT
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _path_schema(path: str, name: str) -> dict | None:
    for parameter in SPEC_DICT["paths"][path].get("parameters", []):
        if parameter["in"] == "path" and parameter["name"] == name:
            return parameter["schema"]
    return None


def _body_schema(path: str, method: str, name: str) -> dict | None:
    operation = SPEC_DICT["paths"][path][method.lower()]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = _resolve_ref(schema["$ref"])
    return schema.get("properties", {}).get(name)


def _conforms(value: Any, schema: dict | None) -> bool:
    """Only values the committed spec accepts are swapped, so negative cases stay negative."""
    return schema is not None and OAS30Validator(schema).is_valid(value)


def _choices(value: Any, schema: dict | None, alternatives: list) -> st.SearchStrategy:
    if not WORLD or not _conforms(value, schema):
        return st.just(value)
    return st.sampled_from([value, *alternatives])


@SCHEMA.hook
def flatmap_path_parameters(ctx, path_parameters):
    if not path_parameters:
        return st.just(path_parameters)
    path = ctx.operation.path
    strategies = {}
    for name, value in path_parameters.items():
        if _is_int(value) and value > MAX_DB_INT:
            value = value % MAX_DB_INT
        schema = _path_schema(path, name)
        if name == "code" and WORLD:
            key = "institutions" if path.startswith("/v1/institutions/") else "people"
            strategies[name] = _choices(value, schema, WORLD[key])
        elif name in _PATH_WORLD and WORLD:
            strategies[name] = _choices(value, schema, WORLD[_PATH_WORLD[name]])
        else:
            strategies[name] = st.just(value)
    return st.fixed_dictionaries(strategies)


@SCHEMA.hook
def flatmap_body(ctx, body):
    if not WORLD or not isinstance(body, dict):
        return st.just(body)
    path, method = ctx.operation.path, ctx.operation.method

    def alternatives(name: str, value: Any) -> list:
        if name in _BODY_WORLD:
            return WORLD[_BODY_WORLD[name]]
        if name in DATE_FIELDS and isinstance(value, str) and DATE.fullmatch(value):
            # a generated date is mostly in the future, which the rules refuse; today is not
            return [local_today().isoformat()]
        if name == "practitioner_codes" and isinstance(value, list):
            return [[*value, *WORLD["people"]]]
        if name == "url":
            return [f"https://{PUBLIC_HOOK_HOST}/fuzz"]
        return []

    strategies = {}
    for name, value in body.items():
        options = alternatives(name, value)
        schema = _body_schema(path, method, name) if options else None
        strategies[name] = _choices(value, schema, options) if options else st.just(value)
    return st.fixed_dictionaries(strategies)


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture
def no_dns(monkeypatch):
    """Webhook URLs are resolved on creation; the fuzzer must not query a resolver (there is none).

    IP literals resolve as usual; PUBLIC_HOOK_HOST resolves to a public address (nothing is ever
    sent to it: deliveries come from the dispatcher's delivery sweep, which no test here runs);
    every other name does not resolve.
    """
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host)
        try:
            ipaddress.ip_address(name.split("%")[0])
        except ValueError:
            if name == PUBLIC_HOOK_HOST:
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port or 443))]
            raise socket.gaierror(socket.EAI_NONAME, "no resolver in the test sandbox") from None
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def _seed(app, client, session) -> dict[str, Any]:
    today = local_today().isoformat()
    admin_key = make_key(session, "admin")
    reviewer_key = make_key(session, "reviewer")
    admin = Api(client, admin_key)
    institution = admin.institution()
    person_p, person_q = admin.practitioner(), admin.practitioner()
    admin.register(person_p, institution, "2025-01-01")
    admin.register(person_q, institution, "2025-01-01")
    # a subscription before the decisions, so that they become deliveries
    subscription = webhooks.create_subscription(
        session,
        authenticate(session, admin_key, now=utc_now()),
        webhooks.CreateSubscription(
            url=f"https://{PUBLIC_HOOK_HOST}/a", event_types=("violation.recorded", "measure.triggered")
        ),
        keys=app.extensions["points_service"].pii,
        allow_private=False,
        now=utc_now(),
    ).subscription
    session.flush()
    # 3 points: an institution talk; 7 points: a public notice
    talk = admin.violation(
        person_p, institution, behaviour_code="B1-99", responsibility="main", decided_on=today
    )
    notice = admin.violation(
        person_q, institution, behaviour_code="B3-01", responsibility="general", decided_on=today
    )
    measures = [t["id"] for v in (talk, notice) for t in v["triggered"] if t["type"] == "measure"]
    assert len(measures) == 2
    appeal = admin.post(f"/v1/violations/{talk['id']}/appeals", {"reason": "on leave that week"})
    repairs = [
        admin.post(
            "/v1/repairs",
            {
                "practitioner_code": person,
                "institution_code": institution,
                "activity": "online_study",
                "completed_on": today,
                "evidence_ref": f"certificate-{person}",
            },
        )
        for person in (person_p, person_q)
    ]
    approved = admin.post(
        f"/v1/repairs/{repairs[1]['id']}/institution-review",
        {"decision": "approve", "comment": "attended", "version": repairs[1]["version"]},
        status=200,
    )
    assert webhooks.fan_out(session, now=utc_now()) > 0
    session.flush()
    return {
        "admin_key": admin_key,
        "reviewer_key": reviewer_key,
        "institutions": [institution],
        "people": [person_p, person_q],
        "violation_ids": [talk["id"], notice["id"]],
        "measure_ids": measures,
        "appeal_ids": [appeal["id"]],
        "repair_ids": [r["id"] for r in repairs],
        "versions": sorted({repairs[0]["version"], approved["version"]}),
        "webhook_ids": [subscription.id],
    }


@pytest.fixture
def world(app, client, session, no_dns):
    """The seeded objects the hooks point requests at (see _seed)."""
    WORLD.update(_seed(app, client, session))
    yield WORLD
    WORLD.clear()


# -- the fuzz test ---------------------------------------------------------------------------------


@SCHEMA.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
def test_the_api_honours_its_contract(case, app, world):
    # the app is in-process (WSGI); the checks' own probes (ignored_auth) go to it as well
    case.operation.schema.app = app
    meta = case.meta
    phase = meta.phase.name.value if meta else "?"
    mode = meta.generation.mode.value if meta else "?"
    CASES[(case.operation.label, phase, mode)] += 1
    key = world["reviewer_key"] if case.operation.label in REVIEWER_ONLY else world["admin_key"]
    excluded = []
    if case.operation.label.endswith("/registrations/{institution_code}/end"):
        # the world hook puts the seeded registration's valid dates into the body, which can turn a
        # negative case (an invalid end_date) back into a valid request; the harness, not the API
        excluded.append(negative_data_rejection)
    case.call_and_validate(
        app=app,
        headers={"Authorization": f"Bearer {key}"},
        checks=CHECKS,
        excluded_checks=excluded,
    )


def test_the_fuzzer_sent_cases_for_every_operation(capsys):
    """Runs after the fuzz test (file order): reports how many cases were generated and sent."""
    if not CASES:
        pytest.skip("the fuzz test did not run in this session")
    operations = {op for op, _, _ in CASES}
    modes: Counter[str] = Counter()
    for (_, _, mode), n in CASES.items():
        modes[mode] += n
    by_operation: dict[str, dict[int, int]] = {}
    for (operation, status), n in sorted(STATUSES.items()):
        by_operation.setdefault(operation, {})[status] = n
    with capsys.disabled():
        print(
            f"\nschemathesis: {sum(CASES.values())} cases over {len(operations)} operations ({dict(modes)})"
        )
        for operation, statuses in by_operation.items():
            print(f"  {operation}: {statuses}")
    spec = yaml.safe_load(SPEC.read_text("utf-8"))
    declared = {
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert operations == declared
    assert modes["positive"] > 0 and modes["negative"] > 0
    # the seeded world is reached: most operations answered 2xx at least once
    succeeded = {op for (op, status), _ in STATUSES.items() if 200 <= status < 300}
    assert len(succeeded) >= len(declared) - 4, sorted(declared - succeeded)


# -- the defects it found, reproduced --------------------------------------------------------------

# Found: a path id beyond BIGINT was a 500 (an overflow in the database); routing now
# stops at 2**63 - 1 (api.DatabaseId, `maximum` in openapi.yaml)
HUGE = 2**64
INT_ID_REQUESTS = [
    ("GET", "/v1/violations/{id}", None),
    ("POST", "/v1/violations/{id}/appeals", {"reason": "on leave"}),
    ("GET", "/v1/appeals/{id}", None),
    ("POST", "/v1/appeals/{id}/decision", {"outcome": "upheld", "reason": "the file holds"}),
    ("GET", "/v1/repairs/{id}", None),
    ("POST", "/v1/repairs/{id}/institution-review", {"decision": "approve", "version": 1}),
    ("POST", "/v1/repairs/{id}/agency-review", {"decision": "approve", "version": 1}),
    ("POST", "/v1/measures/{id}/complete", {"completed_on": "2026-01-05"}),
    ("POST", "/v1/measures/{id}/publish", {"published_on": "2026-01-05"}),
    ("DELETE", "/v1/webhooks/{id}", None),
    ("GET", "/v1/webhooks/{id}/deliveries", None),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), INT_ID_REQUESTS, ids=[f"{m} {p}" for m, p, _ in INT_ID_REQUESTS]
)
def test_a_path_id_beyond_the_database_range_is_not_found(client, session, method, path, body):
    role = "reviewer" if path.endswith(("/decision", "/agency-review")) else "admin"
    headers = {"Authorization": f"Bearer {make_key(session, role)}"}
    response = client.open(path.format(id=HUGE), method=method, json=body, headers=headers)
    assert response.status_code == 404, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM


def test_every_history_item_matches_the_committed_schema(app, client, session, no_dns):
    seeded = _seed(app, client, session)
    admin = Api(client, seeded["admin_key"])
    # a completed talk and a decided appeal too
    admin.post(
        f"/v1/measures/{seeded['measure_ids'][0]}/complete",
        {"completed_on": local_today().isoformat()},
        status=200,
    )
    Api(client, seeded["reviewer_key"]).post(
        f"/v1/appeals/{seeded['appeal_ids'][0]}/decision",
        {"outcome": "upheld", "reason": "the file holds"},
        status=200,
    )
    item_schema = yaml.safe_load(SPEC.read_text("utf-8"))["components"]["schemas"]["HistoryItem"]
    validator = OAS30Validator(item_schema)
    for person in seeded["people"]:
        items = admin.get(f"/v1/practitioners/{person}/history", query={"limit": 500})["items"]
        errors = [f"{item['kind']}: {e.message}" for item in items for e in validator.iter_errors(item)]
        assert not errors, errors


# Found: malformed JSON answered 400 (docs/api.md Conventions), which no operation documented;
# every operation with a JSON body now does (Blueprint.arguments)
def test_every_operation_with_a_body_documents_400_for_malformed_json():
    spec = yaml.safe_load(SPEC.read_text("utf-8"))
    undocumented = [
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "requestBody" in operation and "400" not in operation["responses"]
    ]
    assert not undocumented, undocumented


def test_malformed_json_is_a_400_problem(client, session):
    """What the finding above was about: the behaviour was right, only the spec did not say it."""
    headers = {"Authorization": f"Bearer {make_key(session, 'admin')}", "Content-Type": "application/json"}
    response = client.post("/v1/institutions", data=b'{"code": ', headers=headers)
    assert response.status_code == 400
    assert response.mimetype == PROBLEM


CODE_FIELDS = [
    ("InstitutionCreate", "code"),
    ("PractitionerCreate", "code"),
    ("RegistrationCreate", "institution_code"),
    ("ViolationCreate", "practitioner_code"),
    ("ViolationCreate", "institution_code"),
    ("RepairCreate", "practitioner_code"),
    ("RepairCreate", "institution_code"),
]


# Found: code fields were validated with validate.And(Length(1, 64), Regexp(...)), which
# apispec does not render, so openapi.yaml allowed any string that the API then refused with 422;
# the validators are now a list, which it renders
def test_code_fields_document_their_length_and_pattern():
    schemas = yaml.safe_load(SPEC.read_text("utf-8"))["components"]["schemas"]
    undocumented = [
        f"{schema}.{name}"
        for schema, name in CODE_FIELDS
        if not {"minLength", "maxLength", "pattern"} <= set(schemas[schema]["properties"][name])
    ]
    assert not undocumented, undocumented


@pytest.mark.parametrize("code", ["", "ß", "-H1", "H" * 65], ids=["empty", "non-ascii", "dash first", "65"])
def test_a_code_outside_the_documented_form_is_refused(client, session, code):
    """Refused, as the spec's minLength, maxLength and pattern say."""
    schema = SPEC_DICT["components"]["schemas"]["InstitutionCreate"]["properties"]["code"]
    assert not _conforms(code, schema)
    headers = {"Authorization": f"Bearer {make_key(session, 'admin')}"}
    body = {"code": code, "name": "A hospital", "kind": "medical_institution", "region_code": "130100"}
    response = client.post("/v1/institutions", json=body, headers=headers)
    assert response.status_code == 422
    assert response.get_json()["errors"]["code"]


NUL = "a\x00b"


def _nul_requests() -> list[tuple[str, str, Any, dict | None]]:
    today = local_today().isoformat()
    return [
        ("GET", "/v1/practitioners/a%00b", None, None),
        ("GET", "/v1/institutions/a%00b", None, None),
        ("GET", "/v1/practitioners/a%00b/standing", None, None),
        ("GET", "/v1/practitioners/a%00b/eligibility", None, None),
        ("GET", "/v1/practitioners/a%00b/history", None, None),
        ("GET", "/v1/institutions/a%00b/eligibility", None, None),
        ("GET", "/v1/audit", None, {"actor": NUL}),
        ("GET", "/v1/audit", None, {"object": NUL}),
        ("POST", "/v1/eligibility/batch", {"practitioner_codes": [NUL]}, None),
        (
            "POST",
            "/v1/institutions",
            {"code": "HNUL", "name": NUL, "kind": "medical_institution", "region_code": "130100"},
            None,
        ),
        (
            "POST",
            "/v1/practitioners",
            {"code": "PNUL", "name": NUL, "id_number": new_id_number(), "category": "physician"},
            None,
        ),
        ("POST", "/v1/violations/{violation}/appeals", {"reason": NUL}, None),
        (
            "POST",
            "/v1/repairs",
            {
                "practitioner_code": "{person}",
                "institution_code": "{institution}",
                "activity": "online_study",
                "completed_on": today,
                "evidence_ref": NUL,
            },
            None,
        ),
        (
            "POST",
            "/v1/practitioners/{person}/registrations/{institution}/end",
            {"end_date": today, "reason": NUL},
            None,
        ),
    ]


NUL_IDS = [
    "GET practitioner",
    "GET institution",
    "GET standing",
    "GET eligibility",
    "GET history",
    "GET roster",
    "GET audit actor",
    "GET audit object",
    "POST eligibility batch",
    "POST institution name",
    "POST practitioner name",
    "POST appeal reason",
    "POST repair evidence_ref",
    "POST registration end reason",
]


# Found: a NUL character in a path code, query or body string was a 500 on PostgreSQL (psycopg
# DataError: text cannot contain NUL); a path part holding one matches no route (api.PathText), and
# BaseSchema refuses it at its field. Run on both databases: SQLite would have stored it.
@pytest.mark.parametrize("index", range(len(NUL_IDS)), ids=NUL_IDS)
def test_a_nul_character_is_a_client_error_on_every_database(app, client, session, no_dns, index):
    seeded = _seed(app, client, session)
    names = {
        "person": seeded["people"][0],
        "institution": seeded["institutions"][0],
        "violation": seeded["violation_ids"][1],  # the one not yet appealed
    }
    method, path, body, query = _nul_requests()[index]
    if isinstance(body, dict):
        body = {k: v.format(**names) if isinstance(v, str) and "{" in v else v for k, v in body.items()}
    headers = {"Authorization": f"Bearer {seeded['admin_key']}"}
    response = client.open(
        path.format(**names), method=method, json=body, query_string=query, headers=headers
    )
    expected = 404 if "%00" in path else 422
    assert response.status_code == expected, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    if expected == 422:
        errors = response.get_json()["errors"]
        assert any("NUL" in message for messages in errors.values() for message in messages), errors


def test_the_largest_path_id_reaches_the_database_and_is_not_found(client, session):
    headers = {"Authorization": f"Bearer {make_key(session, 'admin')}"}
    response = client.get(f"/v1/violations/{2**63 - 1}", headers=headers)
    assert response.status_code == 404, response.get_data(as_text=True)
    assert response.json["detail"] == f"no violation {2**63 - 1}"
