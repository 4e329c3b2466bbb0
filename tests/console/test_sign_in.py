"""Signing in to the console with a personal key: the session it opens (a signed cookie holding the
key's id, re-checked on every request), CSRF on every form, the idle limit, signing out, and the
limit on refused keys that the API's keys share."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest
from conftest import Console, csrf_of, text
from factories import auth, make_key
from sqlalchemy import func, select, update

from points_service.clock import local_today, utc_now
from points_service.console.base import COOKIE_NAME, session_secret
from points_service.persistence.models import ApiKey, RepairApplication

GUESSER = {"REMOTE_ADDR": "203.0.113.7"}
NEIGHBOUR = {"REMOTE_ADDR": "203.0.113.8"}


def _cookie(response) -> str:
    cookies = [v for v in response.headers.getlist("Set-Cookie") if v.startswith(COOKIE_NAME + "=")]
    assert len(cookies) == 1, response.headers.getlist("Set-Cookie")
    return cookies[0]


def test_signing_in_with_a_practitioners_key_opens_their_own_page(console, case):
    response = console.sign_in(case.practitioner_key)
    assert response.headers["Location"] == "/console/me"
    page = console.get("/console/me")
    assert page.status_code == 200
    assert f"Person {case.person}" in text(page)
    # the home of the console sends each role to its own page
    assert console.get("/console/").headers["Location"] == "/console/me"


def test_the_session_cookie_is_signed_httponly_strict_limited_to_the_console_and_holds_no_key(client, case):
    page = client.get("/console/sign-in")
    response = client.post(
        "/console/sign-in",
        data={"key": case.practitioner_key, "csrf_token": csrf_of(text(page))},
    )
    cookie = _cookie(response)
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "expires"} <= attributes
    assert "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "secure" not in attributes  # plain HTTP here (below: HTTPS)
    # the key is in it neither in clear nor as its stored hash; the id is, under a signature
    value = cookie.split(";")[0].split("=", 1)[1]
    assert case.practitioner_key not in value and case.practitioner_key[4:20] not in value
    tampered = value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB")
    client.set_cookie(COOKIE_NAME, tampered, path="/console")
    assert client.get("/console/me").status_code == 303


def test_the_session_cookie_is_secure_when_the_request_came_over_https(app, case):
    client = app.test_client()
    https = {"base_url": "https://console.example.test"}
    page = client.get("/console/sign-in", **https)
    response = client.post(
        "/console/sign-in",
        data={"key": case.practitioner_key, "csrf_token": csrf_of(text(page))},
        # over HTTPS Flask-WTF also checks that the form came from this host
        headers={"Referer": "https://console.example.test/console/sign-in"},
        **https,
    )
    assert response.status_code == 303, text(response)
    assert "; Secure" in _cookie(response)


def test_a_wrong_key_is_refused_with_a_message_and_opens_no_session(console, client):
    page = client.get("/console/sign-in")
    response = client.post(
        "/console/sign-in",
        data={"key": "pts_" + secrets.token_urlsafe(32), "csrf_token": csrf_of(text(page))},
    )
    assert response.status_code == 403
    assert "密钥无效、已吊销或已过期" in text(response)
    assert client.get("/console/me").status_code == 303


def test_a_form_posted_without_its_csrf_token_is_refused_and_writes_nothing(console, case, session):
    page = console.client.get("/console/sign-in")
    assert 'name="csrf_token"' in text(page)
    refused = console.client.post("/console/sign-in", data={"key": case.practitioner_key})
    assert refused.status_code == 400 and "表单已失效" in text(refused)
    forged = console.client.post(
        "/console/sign-in", data={"key": case.practitioner_key, "csrf_token": "forged"}
    )
    assert forged.status_code == 400

    console.sign_in(case.practitioner_key)
    form = {
        "institution_code": case.hospital,
        "activity": "offline_training",
        "completed_on": local_today().isoformat(),
        "evidence_ref": "certificate 0042",
    }
    before = session.scalar(select(func.count()).select_from(RepairApplication))
    assert console.post("/console/me/repairs", form, token=False).status_code == 400
    assert session.scalar(select(func.count()).select_from(RepairApplication)) == before
    # sign-out is a form too
    assert console.post("/console/sign-out", {}, token=False).status_code == 400
    assert console.get("/console/me").status_code == 200


def test_a_session_idle_longer_than_the_limit_ends_and_says_so(console, case, settings):
    console.sign_in(case.practitioner_key)
    assert console.get("/console/me").status_code == 200
    idle = dt.timedelta(minutes=settings.console_idle_minutes, seconds=1)
    with console.client.session_transaction("/console/") as stored:
        stored["seen"] = int((utc_now() - idle).timestamp())
    response = console.get("/console/me")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/console/sign-in")
    assert "长时间未操作" in text(console.get(response.headers["Location"]))
    assert console.get("/console/me").status_code == 303


def test_each_request_moves_the_idle_limit_on(console, case, settings):
    console.sign_in(case.practitioner_key)
    almost = dt.timedelta(minutes=settings.console_idle_minutes - 1)
    with console.client.session_transaction("/console/") as stored:
        stored["seen"] = int((utc_now() - almost).timestamp())
    assert console.get("/console/me").status_code == 200
    with console.client.session_transaction("/console/") as stored:
        assert utc_now().timestamp() - stored["seen"] < 60


def test_signing_out_ends_the_session(console, case):
    console.sign_in(case.practitioner_key)
    assert console.get("/console/me").status_code == 200
    response = console.post("/console/sign-out", {})
    assert response.status_code == 303 and response.headers["Location"] == "/console/sign-in"
    assert "您已退出" in text(console.get("/console/sign-in"))
    assert console.get("/console/me").status_code == 303


def test_a_revoked_keys_session_ends_at_its_next_request(console, case, session):
    console.sign_in(case.practitioner_key)
    assert console.get("/console/me").status_code == 200
    session.execute(update(ApiKey).where(ApiKey.role == "practitioner").values(revoked_at=utc_now()))
    session.flush()
    response = console.get("/console/me")
    assert response.status_code == 303
    assert "已被吊销或已过期" in text(console.get(response.headers["Location"]))
    # the session is gone, not just refused once
    assert console.get("/console/me").status_code == 303


def test_an_expired_keys_session_ends_at_its_next_request(console, case, session):
    console.sign_in(case.practitioner_key)
    session.execute(
        update(ApiKey)
        .where(ApiKey.role == "practitioner")
        .values(expires_at=utc_now() - dt.timedelta(seconds=1))
    )
    session.flush()
    assert console.get("/console/me").status_code == 303


def test_a_page_asked_for_without_a_session_comes_back_after_signing_in(console, case):
    response = console.get(f"/console/me/decisions/{case.violation_id}/appeal")
    assert response.status_code == 303
    target = response.headers["Location"]
    assert target.startswith("/console/sign-in?next=")
    page = console.get(target)
    signed = console.client.post(
        target, data={"key": case.practitioner_key, "csrf_token": csrf_of(text(page))}
    )
    assert signed.headers["Location"] == f"/console/me/decisions/{case.violation_id}/appeal"


def test_signing_in_never_sends_the_browser_to_another_host(console, case):
    for target in (
        "https://evil.example/",
        "//evil.example/console/",
        "/v1/policy",
        "/console\\@evil.example",
    ):
        page = console.get("/console/sign-in", query_string={"next": target})
        signed = console.client.post(
            "/console/sign-in",
            query_string={"next": target},
            data={"key": case.practitioner_key, "csrf_token": csrf_of(text(page))},
        )
        assert signed.headers["Location"] == "/console/me", target


def test_sign_in_attempts_with_refused_keys_are_limited_per_address_as_the_apis_are(make_app, session):
    app = make_app(rate_limit="1000 per minute", auth_failure_limit="3 per minute")
    guesser = Console(app.test_client())
    good = make_key(session, "inspector")

    def attempt(console, key, environ):
        page = console.client.get("/console/sign-in", environ_base=environ)
        return console.client.post(
            "/console/sign-in", data={"key": key, "csrf_token": csrf_of(text(page))}, environ_base=environ
        )

    assert [attempt(guesser, "pts_" + secrets.token_urlsafe(32), GUESSER).status_code for _ in range(3)] == [
        403
    ] * 3
    limited = attempt(guesser, "pts_" + secrets.token_urlsafe(32), GUESSER)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "秒后再试" in text(limited)
    # a real key never used from there waits like a guess (answering would tell which key is real)
    assert attempt(guesser, good, GUESSER).status_code == 429
    # the budget is the API's: the same address's bearer guesses are refused too
    api = app.test_client().get(
        "/v1/policy", headers=auth("pts_" + secrets.token_urlsafe(32)), environ_base=GUESSER
    )
    assert api.status_code == 429
    # another address is untouched, and a key accepted there is then known everywhere
    neighbour = Console(app.test_client())
    assert attempt(neighbour, good, NEIGHBOUR).status_code == 303
    assert attempt(Console(app.test_client()), good, GUESSER).status_code == 303


def test_the_api_sets_no_cookie_and_a_console_cookie_is_not_a_key_for_it(console, case):
    response = console.client.get("/v1/policy", headers=auth(case.practitioner_key))
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    console.sign_in(case.practitioner_key)
    assert console.client.get(f"/v1/practitioners/{case.person}/standing").status_code == 401


def test_the_session_key_is_derived_from_the_index_key_unless_one_is_set(settings):
    from dataclasses import replace

    derived = session_secret(settings)
    assert len(derived) == 32 and derived != settings.index_key.encode()
    assert (
        session_secret(replace(settings, index_key="b3RoZXItaW5kZXgta2V5LW5vdC1wcm9kISEhISEhISE=")) != derived
    )
    assert session_secret(replace(settings, console_secret="set by the operator")) == b"set by the operator"


def test_the_console_settings_are_read_and_checked_at_start_up(monkeypatch, tmp_path):
    from points_service.settings import Settings, SettingsError

    secret = tmp_path / "console-secret"
    secret.write_text("from a file\n", "utf-8")
    monkeypatch.setenv("POINTS_CONSOLE_SECRET_FILE", str(secret))
    monkeypatch.setenv("POINTS_CONSOLE_IDLE_MINUTES", "15")
    settings = Settings.from_env()
    assert (settings.console_secret, settings.console_idle_minutes) == ("from a file", 15)
    assert "from a file" not in repr(settings)
    monkeypatch.setenv("POINTS_CONSOLE_IDLE_MINUTES", "0")
    with pytest.raises(SettingsError) as refused:
        Settings.from_env()
    assert [name for name, _ in refused.value.problems] == ["POINTS_CONSOLE_IDLE_MINUTES"]
