"""What every response carries and what every client is held to:
security headers and the request id, the body size limit (413), the batch limit (422), the rate
limit per API key (429 with Retry-After, shared through Redis) and national IDs kept out of logs."""

from __future__ import annotations

import json
import logging
import re
import uuid

import pytest
from factories import Api, auth, code, make_key
from factories import assert_problem as _problem
from sqlalchemy import func, select

from points_service.clock import local_today
from points_service.persistence.models import Institution
from points_service.rules.identifiers import with_check_character

PROBLEM = "application/problem+json"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Referrer-Policy": "no-referrer",
}
REDIS_URL = "redis://127.0.0.1:6379/15"


def _institution_body(c: str) -> dict:
    return {"code": c, "name": f"Hospital {c}", "kind": "medical_institution", "region_code": "130100"}


# -- security headers and the request id ----------------------------------------------------------


def _requests(client, key: str) -> dict:
    headers = auth(key)
    return {
        "200 health": client.get("/health/live"),
        "200 with a key": client.get("/v1/policy", headers=headers),
        "201 write": client.post("/v1/institutions", json=_institution_body(code("H")), headers=headers),
        "401 no key": client.get("/v1/policy"),
        "401 unknown key": client.get("/v1/policy", headers=auth(key + "x")),
        "404 unknown object": client.get("/v1/institutions/NOPE", headers=headers),
        "404 unknown route": client.get("/no/such/route"),
        "405 wrong method": client.delete("/v1/policy", headers=headers),
        "422 invalid body": client.post("/v1/institutions", json={"code": "H"}, headers=headers),
    }


def test_every_response_carries_the_security_headers_and_a_request_id(client, admin_key):
    responses = _requests(client, admin_key)
    assert {label: r.status_code for label, r in responses.items()} == {
        "200 health": 200,
        "200 with a key": 200,
        "201 write": 201,
        "401 no key": 401,
        "401 unknown key": 401,
        "404 unknown object": 404,
        "404 unknown route": 404,
        "405 wrong method": 405,
        "422 invalid body": 422,
    }
    request_ids = set()
    for label, response in responses.items():
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (label, name)
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"]), label
        request_ids.add(response.headers["X-Request-ID"])
        if response.status_code >= 400:
            assert response.mimetype == PROBLEM, label
            assert response.get_json()["request_id"] == response.headers["X-Request-ID"], label
    assert len(request_ids) == len(responses)  # a new id for every request


def test_an_incoming_request_id_is_echoed_in_the_header_and_the_problem_body(client, admin_key):
    ok = client.get("/v1/policy", headers={**auth(admin_key), "X-Request-ID": "trace-0001"})
    assert ok.status_code == 200
    assert ok.headers["X-Request-ID"] == "trace-0001"

    refused = client.get("/v1/institutions/NOPE", headers={**auth(admin_key), "X-Request-ID": "trace-0002"})
    assert refused.headers["X-Request-ID"] == "trace-0002"
    assert _problem(refused, 404, "not-found")["request_id"] == "trace-0002"

    anonymous = client.get("/v1/policy", headers={"X-Request-ID": "trace-0003"})
    assert _problem(anonymous, 401, "not-authenticated")["request_id"] == "trace-0003"


def test_an_overlong_incoming_request_id_is_replaced_by_a_fresh_one(client, admin_key):
    response = client.get("/v1/policy", headers={**auth(admin_key), "X-Request-ID": "r" * 65})
    assert response.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
    exactly_64 = client.get("/v1/policy", headers={**auth(admin_key), "X-Request-ID": "r" * 64})
    assert exactly_64.headers["X-Request-ID"] == "r" * 64


# -- body size (413) and batch size (422) ---------------------------------------------------------


def test_a_body_over_the_limit_is_a_413_problem_and_writes_nothing(make_app, session):
    app = make_app(max_body_bytes=1000)
    client = app.test_client()
    key = make_key(session, "admin")
    c = code("H")
    # a valid request, padded with JSON whitespace past the limit: only its size is wrong
    body = json.dumps(_institution_body(c)) + " " * 1200
    response = client.post(
        "/v1/institutions",
        data=body,
        headers={**auth(key), "Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex},
    )
    problem = _problem(response, 413, "payload-too-large")
    assert problem["title"] == "Payload too large"
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert session.scalar(select(func.count()).select_from(Institution).where(Institution.code == c)) == 0
    assert client.get(f"/v1/institutions/{c}", headers=auth(key)).status_code == 404

    # the same request within the limit is served
    small = client.post(
        "/v1/institutions", data=body.strip(), headers={**auth(key), "Content-Type": "application/json"}
    )
    assert small.status_code == 201, small.get_data(as_text=True)


def test_a_body_just_at_the_limit_is_accepted(make_app, session):
    app = make_app(max_body_bytes=1000)
    key = make_key(session, "admin")
    body = json.dumps(_institution_body(code("H")))
    body += " " * (1000 - len(body.encode()))
    assert len(body.encode()) == 1000
    response = app.test_client().post(
        "/v1/institutions", data=body, headers={**auth(key), "Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.get_data(as_text=True)


def test_an_eligibility_batch_of_more_than_1000_codes_is_a_422(client, admin_key):
    codes = [f"P{i:05d}" for i in range(1001)]
    response = client.post(
        "/v1/eligibility/batch", json={"practitioner_codes": codes}, headers=auth(admin_key)
    )
    body = _problem(response, 422, "validation-error")
    assert list(body["errors"]) == ["practitioner_codes"]

    full = client.post(
        "/v1/eligibility/batch", json={"practitioner_codes": codes[:1000]}, headers=auth(admin_key)
    )
    assert full.status_code == 200, full.get_data(as_text=True)
    results = full.get_json()["results"]
    assert [r["practitioner_code"] for r in results] == codes[:1000]
    assert {r["status"] for r in results} == {"unknown"}


# -- rate limiting (429) --------------------------------------------------------------------------


def _assert_rate_limited(response) -> None:
    _problem(response, 429, "rate-limited")
    retry_after = response.headers.get("Retry-After")
    assert retry_after is not None and retry_after.isdigit(), retry_after
    assert 1 <= int(retry_after) <= 60
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value


def test_the_fourth_request_of_one_key_is_a_429_while_another_key_is_still_served(make_app, session):
    client = make_app(rate_limit="3 per minute").test_client()
    first, second = make_key(session, "inspector"), make_key(session, "inspector")
    assert [client.get("/v1/policy", headers=auth(first)).status_code for _ in range(3)] == [200, 200, 200]
    _assert_rate_limited(client.get("/v1/policy", headers=auth(first)))

    assert [client.get("/v1/policy", headers=auth(second)).status_code for _ in range(3)] == [200, 200, 200]
    _assert_rate_limited(client.get("/v1/policy", headers=auth(second)))


def test_the_rate_limit_is_one_budget_per_key_across_endpoints(make_app, session):
    client = make_app(rate_limit="3 per minute").test_client()
    key = make_key(session, "inspector")
    assert [client.get("/v1/policy", headers=auth(key)).status_code for _ in range(3)] == [200, 200, 200]
    _assert_rate_limited(client.get("/v1/institutions/NOPE", headers=auth(key)))


def test_the_health_checks_are_exempt_from_the_rate_limit(make_app, session):
    client = make_app(rate_limit="3 per minute").test_client()
    key = make_key(session, "inspector")
    # exhaust both the key's budget and the anonymous (per address) budget
    for _ in range(3):
        client.get("/v1/policy", headers=auth(key))
        client.get("/v1/policy")
    _assert_rate_limited(client.get("/v1/policy", headers=auth(key)))
    _assert_rate_limited(client.get("/v1/policy"))
    for _ in range(5):
        assert client.get("/health/live").status_code == 200
        assert client.get("/health/live", headers=auth(key)).status_code == 200
        assert client.get("/health/ready").status_code == 200


@pytest.fixture
def redis_db():
    redis = pytest.importorskip("redis")
    connection = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        connection.ping()
    except redis.exceptions.RedisError as exc:
        connection.close()
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


def test_with_redis_the_limit_is_shared_by_every_app_instance(make_app, session, redis_db):
    one = make_app(rate_limit="3 per minute", redis_url=REDIS_URL).test_client()
    two = make_app(rate_limit="3 per minute", redis_url=REDIS_URL).test_client()
    key, other = make_key(session, "inspector"), make_key(session, "inspector")
    statuses = [
        one.get("/v1/policy", headers=auth(key)).status_code,
        two.get("/v1/policy", headers=auth(key)).status_code,
        one.get("/v1/policy", headers=auth(key)).status_code,
    ]
    assert statuses == [200, 200, 200]
    assert redis_db.dbsize() > 0  # the counts live in Redis, not in either process
    _assert_rate_limited(two.get("/v1/policy", headers=auth(key)))
    _assert_rate_limited(one.get("/v1/policy", headers=auth(key)))
    assert two.get("/v1/policy", headers=auth(other)).status_code == 200


# -- the national ID never reaches a log line or a response body ---------------------------------


@pytest.fixture
def debug_logs(caplog):
    """Every logger at DEBUG (SQLAlchemy sets its own to WARN), set before the test's connection is
    opened, so the SQL and its parameters are logged and scanned too."""
    caplog.set_level(logging.DEBUG)
    for name in ("sqlalchemy", "sqlalchemy.engine", "werkzeug", "flask_limiter", "points_service"):
        caplog.set_level(logging.DEBUG, logger=name)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET:
            caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def _id_ending_in_x() -> str:
    for serial in range(1000):
        number = with_check_character(f"13010219850612{serial:03d}")
        if number.endswith("X"):
            return number
    raise AssertionError("unreachable")


def test_the_national_id_never_appears_in_a_log_line_or_a_response_body(
    log_stream, debug_logs, client, session
):
    admin = Api(client, make_key(session, "admin"))
    inspector = Api(client, make_key(session, "inspector"))
    raw = _id_ending_in_x()
    wrong_check = raw[:17] + "0"
    masked = f"{raw[0]}{'*' * 16}{raw[-1]}"
    person, hospital = code("P"), admin.institution()
    practitioner = {"code": person, "name": "Zhang San", "id_number": raw, "category": "physician"}
    today = local_today().isoformat()
    responses = [
        client.post("/v1/practitioners", json=practitioner, headers=admin.headers),
        # the same person again (lower-case x): a replay
        client.post(
            "/v1/practitioners", json={**practitioner, "id_number": raw.lower()}, headers=admin.headers
        ),
        # the same code with different data, the same number under another code, a bad check digit
        client.post("/v1/practitioners", json={**practitioner, "name": "Li Si"}, headers=admin.headers),
        client.post(
            "/v1/practitioners",
            json={**practitioner, "code": code("P"), "id_number": raw.lower()},
            headers=admin.headers,
        ),
        client.post(
            "/v1/practitioners",
            json={**practitioner, "code": code("P"), "id_number": wrong_check},
            headers=admin.headers,
        ),
        client.post(
            f"/v1/practitioners/{person}/registrations",
            json={"institution_code": hospital, "start_date": "2025-01-01"},
            headers=admin.headers,
        ),
    ]
    violation = {
        "case_ref": code("CASE-"),
        "practitioner_code": person,
        "institution_code": hospital,
        "behaviour_code": "B1-01",
        "responsibility": "general",
        "occurred_on": today,
        "decided_on": today,
    }
    responses += [
        client.post("/v1/violations", json=violation, headers=inspector.headers),
        client.post("/v1/violations", json={**violation, "points": 2}, headers=inspector.headers),
        client.get(f"/v1/practitioners/{person}", headers=admin.headers),
        client.get(f"/v1/practitioners/{person}/standing", headers=admin.headers),
        client.get(f"/v1/practitioners/{person}/history", headers=admin.headers),
        client.get(f"/v1/practitioners/{person}/eligibility", headers=admin.headers),
        client.get("/v1/audit", query_string={"object": f"practitioner/{person}"}, headers=admin.headers),
    ]
    assert [r.status_code for r in responses] == [
        201,
        200,
        409,
        409,
        422,
        201,
        201,
        409,
        200,
        200,
        200,
        200,
        200,
    ]
    assert responses[4].get_json()["errors"]["id_number"] == [
        "national ID: check digit does not match (GB 11643 MOD 11-2)"
    ]
    assert responses[0].get_json()["id_number"] == masked
    assert responses[8].get_json()["id_number"] == masked
    assert responses[12].get_json()["items"][0]["detail"]["id_number"] == masked

    secrets = (raw, raw.lower(), wrong_check, raw[:17])
    for response in responses:
        text = response.get_data(as_text=True)
        for secret in secrets:
            assert secret not in text, (response.request.path, response.status_code)
    assert debug_logs.records, "nothing was logged: the scan would prove nothing"
    # the SQL is logged with its parameters (the masked number among them): a raw one would show
    assert any(masked in r.getMessage() for r in debug_logs.records if r.name.startswith("sqlalchemy"))
    for record in debug_logs.records:
        message = record.getMessage()
        for secret in secrets:
            assert secret not in message, (record.name, message[:200])
    for secret in secrets:
        assert secret not in debug_logs.text
    # the service's own lines (a request line each) are rendered by structlog, not stdlib records
    own = log_stream.getvalue()
    assert own.count('"event":"request"') >= len(responses)
    for secret in secrets:
        assert secret not in own


def test_with_redis_refused_keys_and_known_keys_are_shared_by_every_app_instance(make_app, session, redis_db):
    settings = {"rate_limit": "1000 per minute", "auth_failure_limit": "2 per minute", "redis_url": REDIS_URL}
    one, two = make_app(**settings).test_client(), make_app(**settings).test_client()
    key = make_key(session, "inspector")
    assert one.get("/v1/policy", headers=auth(key)).status_code == 200
    assert one.get("/v1/policy", headers=auth("pts_guess1")).status_code == 401
    assert two.get("/v1/policy", headers=auth("pts_guess2")).status_code == 401
    _assert_rate_limited(one.get("/v1/policy", headers=auth("pts_guess3")))
    _assert_rate_limited(two.get("/v1/policy", headers=auth("pts_guess4")))
    # the key accepted by one instance is known to the other
    assert two.get("/v1/policy", headers=auth(key)).status_code == 200
