"""Keys cannot be guessed at the rate of the API: refused keys are counted per client address with
a tighter budget (POINTS_AUTH_FAILURE_LIMIT), while known keys keep their own budget. Also what a
401 says (RFC 6750) and where Retry-After appears (429 and 503 only)."""

from __future__ import annotations

import secrets
from datetime import timedelta

from factories import assert_problem as _problem
from factories import auth, make_key

from points_service.clock import utc_now
from points_service.services.keys import revoke_key

GUESSER = {"REMOTE_ADDR": "203.0.113.7"}
NEIGHBOUR = {"REMOTE_ADDR": "203.0.113.8"}


def _guess(client, **kwargs):
    return client.get("/v1/policy", headers=auth("pts_" + secrets.token_urlsafe(32)), **kwargs)


def _assert_guessing_refused(response) -> int:
    _problem(response, 429, "rate-limited")
    assert "WWW-Authenticate" not in response.headers
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    return retry_after


def test_random_keys_from_one_address_reach_429_while_a_key_in_use_there_is_still_served(make_app, session):
    client = make_app(rate_limit="1000 per minute", auth_failure_limit="5 per minute").test_client()
    good = make_key(session, "inspector")
    assert client.get("/v1/policy", headers=auth(good), environ_base=GUESSER).status_code == 200

    statuses = [_guess(client, environ_base=GUESSER).status_code for _ in range(5)]
    assert statuses == [401] * 5
    for _ in range(20):
        _assert_guessing_refused(_guess(client, environ_base=GUESSER))

    # the key in use from the same address keeps its own budget, and other addresses are untouched
    for _ in range(3):
        assert client.get("/v1/policy", headers=auth(good), environ_base=GUESSER).status_code == 200
    assert _guess(client, environ_base=NEIGHBOUR).status_code == 401


def test_past_the_budget_a_real_key_never_seen_there_gets_the_same_429_as_a_guess(make_app, session):
    """Answering it would tell the guesser which key is real; it is served from elsewhere."""
    client = make_app(rate_limit="1000 per minute", auth_failure_limit="3 per minute").test_client()
    for _ in range(3):
        assert _guess(client, environ_base=GUESSER).status_code == 401
    unseen = make_key(session, "inspector")
    _assert_guessing_refused(client.get("/v1/policy", headers=auth(unseen), environ_base=GUESSER))
    assert client.get("/v1/policy", headers=auth(unseen), environ_base=NEIGHBOUR).status_code == 200


def test_a_revoked_key_counts_as_refused_and_is_no_longer_known(make_app, session):
    client = make_app(rate_limit="1000 per minute", auth_failure_limit="2 per minute").test_client()
    key = make_key(session, "inspector")
    assert client.get("/v1/policy", headers=auth(key), environ_base=GUESSER).status_code == 200
    revoke_key(session, key[:12], now=utc_now())
    session.flush()
    assert [
        client.get("/v1/policy", headers=auth(key), environ_base=GUESSER).status_code for _ in range(2)
    ] == [401, 401]
    _assert_guessing_refused(client.get("/v1/policy", headers=auth(key), environ_base=GUESSER))


def test_requests_without_a_key_and_the_health_checks_do_not_spend_the_refused_key_budget(make_app):
    client = make_app(rate_limit="1000 per minute", auth_failure_limit="2 per minute").test_client()
    for _ in range(5):
        assert client.get("/v1/policy", environ_base=GUESSER).status_code == 401
        assert client.get("/health/live", headers=auth("not-a-key"), environ_base=GUESSER).status_code == 200
    assert [_guess(client, environ_base=GUESSER).status_code for _ in range(2)] == [401, 401]
    _assert_guessing_refused(_guess(client, environ_base=GUESSER))
    assert client.get("/health/live", headers=auth("not-a-key"), environ_base=GUESSER).status_code == 200


def test_an_empty_auth_failure_limit_leaves_only_the_per_key_limit(make_app):
    client = make_app(rate_limit="1000 per minute", auth_failure_limit="").test_client()
    assert {_guess(client, environ_base=GUESSER).status_code for _ in range(30)} == {401}


# -- what a 401 says (RFC 6750 §3) -----------------------------------------------------------------


def test_a_401_without_a_key_challenges_for_a_bearer_token(client):
    response = client.get("/v1/policy")
    _problem(response, 401, "not-authenticated")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="points-service"'
    basic = client.get("/v1/policy", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.headers["WWW-Authenticate"] == 'Bearer realm="points-service"'


def test_a_401_for_a_key_sent_and_refused_says_invalid_token(client, session):
    unknown = client.get("/v1/policy", headers=auth("pts_nothing"))
    _problem(unknown, 401, "not-authenticated")
    assert unknown.headers["WWW-Authenticate"] == 'Bearer realm="points-service", error="invalid_token"'
    expired = make_key(session, "inspector", expires_at=utc_now() - timedelta(days=1))
    response = client.get("/v1/policy", headers=auth(expired))
    assert _problem(response, 401, "not-authenticated")["detail"] == "this API key has expired"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_answers_other_than_401_carry_no_challenge(client, admin_key):
    assert "WWW-Authenticate" not in client.get("/v1/policy", headers=auth(admin_key)).headers
    assert "WWW-Authenticate" not in client.get("/v1/institutions/NOPE", headers=auth(admin_key)).headers


# -- Retry-After only where waiting helps ------------------------------------------------------------


def test_retry_after_appears_on_a_429_only_while_every_answer_shows_the_remaining_budget(make_app, session):
    client = make_app(rate_limit="3 per minute").test_client()
    key = make_key(session, "inspector")
    answers = [
        client.get("/v1/policy", headers=auth(key)),
        client.get("/v1/institutions/NOPE", headers=auth(key)),
        client.post("/v1/institutions", json={}, headers=auth(key)),
    ]
    assert [a.status_code for a in answers] == [200, 404, 403]
    for answer in answers:
        assert "Retry-After" not in answer.headers, answer.status_code
        assert answer.headers["X-RateLimit-Limit"] == "3"
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    refused = client.get("/v1/policy", headers=auth(key))
    _problem(refused, 429, "rate-limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
