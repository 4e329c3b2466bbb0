"""Webhooks: POST/GET/DELETE /v1/webhooks and the delivery log; deliveries signed the Standard
Webhooks way, at least once with a stable id, retried with backoff for more than a day.

A local HTTP receiver on 127.0.0.1 (allowed here through settings.webhook_allow_private) checks
every signature with the `standardwebhooks` reference library. The dispatcher runs as the sweep
does; its `now` drives the retry schedule, so later `now`s stand for time passing.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import socket
import threading
from collections import Counter

import pytest
from factories import Api, make_key
from sqlalchemy import select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from webhook_receivers import Receiver, _closed_port

from points_service.clock import local_today, utc_now
from points_service.persistence.models import WebhookDelivery
from points_service.services.sweeps import run_job
from points_service.services.webhooks import FIRST_RETRY

PROBLEM = "application/problem+json"
SUSPENDING = {"behaviour_code": "B3-01", "responsibility": "main"}  # 9 points: suspended today
WANTED = ["violation.recorded", "measure.triggered", "eligibility.suspended"]


def _today() -> str:
    return local_today().isoformat()


def _hr(client, session, institution: str) -> Api:
    return Api(client, make_key(session, "hr_system", institution_code=institution))


def _subscribe(api: Api, receiver: Receiver, event_types=WANTED) -> dict:
    hook = api.post("/v1/webhooks", {"url": receiver.url, "event_types": event_types})
    receiver.secret = hook["secret"]
    return hook


def _deliveries(api: Api, hook: dict) -> list[dict]:
    return api.get(f"/v1/webhooks/{hook['id']}/deliveries", query={"limit": 500})["items"]


def _instant(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


# -- subscribing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["hr_system", "reviewer"])
def test_a_subscription_is_created_with_a_whsec_secret_shown_once(
    client, session, admin, local, receivers, role
):
    hospital = admin.institution()
    api = Api(client, make_key(session, role, institution_code=hospital if role == "hr_system" else None))
    receiver = receivers()
    response = client.post(
        "/v1/webhooks",
        json={"url": receiver.url, "event_types": ["eligibility.suspended", "violation.recorded"] * 2},
        headers=api.headers,
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    hook = response.get_json()
    assert response.headers["Location"] == f"/v1/webhooks/{hook['id']}"
    assert set(hook) == {"id", "url", "event_types", "created_at", "disabled_at", "disabled_reason", "secret"}
    assert (hook["disabled_at"], hook["disabled_reason"]) == (None, None)
    assert hook["url"] == receiver.url
    assert hook["event_types"] == ["eligibility.suspended", "violation.recorded"]
    assert hook["secret"].startswith("whsec_")
    assert len(base64.b64decode(hook["secret"].removeprefix("whsec_"))) == 32
    assert abs(_instant(hook["created_at"]) - utc_now()) < dt.timedelta(minutes=1)

    listed = api.get("/v1/webhooks")
    assert listed == {"items": [{k: v for k, v in hook.items() if k != "secret"}]}
    assert hook["secret"] not in json.dumps(listed)
    assert hook["secret"] not in json.dumps(api.get(f"/v1/webhooks/{hook['id']}/deliveries"))
    # each subscription has its own secret
    other = api.post("/v1/webhooks", {"url": receiver.url, "event_types": ["year.rolled_over"]})
    assert other["secret"] != hook["secret"]


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hooks",  # not https
        "https://127.0.0.1/hooks",
        "https://localhost:8443/hooks",
        "https://10.1.2.3/hooks",
        "https://192.168.0.10/hooks",
        "https://169.254.169.254/latest/meta-data",  # cloud metadata (link-local)
        "https://[::1]/hooks",
        "https://0.0.0.0/hooks",
        "ftp://example.com/hooks",
        "/relative/hooks",
    ],
)
def test_http_and_private_addresses_are_refused_when_private_urls_are_not_allowed(client, reviewer, url):
    response = client.post(
        "/v1/webhooks", json={"url": url, "event_types": ["violation.recorded"]}, headers=reviewer.headers
    )
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    assert "url" in response.get_json()["errors"]
    assert reviewer.get("/v1/webhooks") == {"items": []}


def _resolving(monkeypatch, *addresses: str) -> None:
    """Name resolution for check_url without the network: every host resolves to `addresses`."""
    from points_service.services import webhooks as webhooks_svc

    def getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(webhooks_svc.socket, "getaddrinfo", getaddrinfo)


def test_a_public_https_url_is_accepted_with_the_default_settings(client, reviewer, monkeypatch):
    _resolving(monkeypatch, "93.184.215.14")
    hook = reviewer.post(
        "/v1/webhooks", {"url": "https://hooks.example.com/points", "event_types": ["violation.recorded"]}
    )
    assert hook["url"] == "https://hooks.example.com/points"


def test_a_host_with_any_private_address_among_its_addresses_is_refused(client, reviewer, monkeypatch):
    _resolving(monkeypatch, "93.184.215.14", "10.0.0.7")
    response = client.post(
        "/v1/webhooks",
        json={"url": "https://hooks.example.com/points", "event_types": ["violation.recorded"]},
        headers=reviewer.headers,
    )
    assert response.status_code == 422
    assert "url" in response.get_json()["errors"]


@pytest.mark.parametrize(
    "body",
    [
        {"url": "https://hooks.example.com/x", "event_types": ["violation.exploded"]},
        {"url": "https://hooks.example.com/x", "event_types": []},
        {"url": "https://hooks.example.com/x"},
        {"url": "https://hooks.example.com/x", "event_types": ["violation.recorded"], "secret": "mine"},
    ],
)
def test_unknown_or_missing_event_types_and_unknown_fields_are_a_422(client, reviewer, body):
    response = client.post("/v1/webhooks", json=body, headers=reviewer.headers)
    assert response.status_code == 422
    assert response.mimetype == PROBLEM


@pytest.mark.parametrize("role", ["practitioner", "inspector"])
def test_roles_that_may_not_manage_webhooks_get_403(client, session, admin, local, receivers, role):
    person, _ = admin.person()
    api = Api(client, make_key(session, role, practitioner_code=person if role == "practitioner" else None))
    url = receivers().url
    response = client.post(
        "/v1/webhooks", json={"url": url, "event_types": ["violation.recorded"]}, headers=api.headers
    )
    assert response.status_code == 403
    assert response.mimetype == PROBLEM
    assert client.get("/v1/webhooks", headers=api.headers).status_code == 403


def test_webhooks_need_a_key(client):
    assert client.get("/v1/webhooks").status_code == 401
    assert client.post("/v1/webhooks", json={}).status_code == 401
    assert client.delete("/v1/webhooks/1").status_code == 401


def test_a_deleted_subscription_is_gone(client, session, admin, local, receivers):
    hospital = admin.institution()
    hr = _hr(client, session, hospital)
    hook = _subscribe(hr, receivers())
    response = client.delete(f"/v1/webhooks/{hook['id']}", headers=hr.headers)
    assert response.status_code == 204
    assert response.get_data() == b""
    assert client.delete(f"/v1/webhooks/{hook['id']}", headers=hr.headers).status_code == 404
    assert hr.get("/v1/webhooks") == {"items": []}
    hr.get(f"/v1/webhooks/{hook['id']}/deliveries", status=404)
    assert client.delete("/v1/webhooks/999999999", headers=hr.headers).status_code == 404


def test_another_institutions_hr_system_or_another_reviewer_cannot_see_or_delete_a_subscription(
    client, session, admin, local, receivers
):
    mine, theirs = admin.institution(), admin.institution()
    hr, other_hr = _hr(client, session, mine), _hr(client, session, theirs)
    hook = _subscribe(hr, receivers())
    assert other_hr.get("/v1/webhooks") == {"items": []}
    other_hr.get(f"/v1/webhooks/{hook['id']}/deliveries", status=404)
    response = client.delete(f"/v1/webhooks/{hook['id']}", headers=other_hr.headers)
    assert response.status_code == 404 and response.mimetype == PROBLEM

    reviewer_a = Api(client, make_key(session, "reviewer"))
    reviewer_b = Api(client, make_key(session, "reviewer"))
    reviewed = _subscribe(reviewer_a, receivers())
    assert reviewer_b.get("/v1/webhooks") == {"items": []}
    assert client.delete(f"/v1/webhooks/{reviewed['id']}", headers=reviewer_b.headers).status_code == 404
    assert client.delete(f"/v1/webhooks/{hook['id']}", headers=reviewer_a.headers).status_code == 404

    # the owner (and a second key of the same institution) still sees it
    assert [h["id"] for h in hr.get("/v1/webhooks")["items"]] == [hook["id"]]
    assert [h["id"] for h in _hr(client, session, mine).get("/v1/webhooks")["items"]] == [hook["id"]]


# -- signed delivery ------------------------------------------------------------------------------


def test_deliveries_are_signed_and_verify_with_the_standard_webhooks_library(
    client, session, admin, inspector, local, receivers, dispatch
):
    person, hospital = admin.person()  # before subscribing: not delivered
    suspended = admin.practitioner()
    admin.register(suspended, hospital)
    hr = _hr(client, session, hospital)
    receiver = receivers()
    hook = _subscribe(hr, receiver)
    inspector.violation(person, hospital, behaviour_code="B2-01", decided_on=_today())  # + agency talk
    inspector.violation(suspended, hospital, decided_on=_today(), **SUSPENDING)

    assert dispatch() == {"fanned_out": 4, "delivered": 4, "retrying": 0, "failed": 0}
    assert [r["verified"] for r in receiver.requests] == [True] * 4
    feed = {e["id"]: e for e in hr.get("/v1/events", query={"limit": 500})["items"]}
    for request in receiver.requests:
        headers, body = request["headers"], request["body"]
        event = json.loads(body)
        assert headers["webhook-id"] == event["id"]
        assert headers["content-type"] == "application/cloudevents+json; charset=utf-8"
        assert abs(int(headers["webhook-timestamp"]) - utc_now().timestamp()) < 60
        assert headers["webhook-signature"].startswith("v1,")
        assert event == feed[event["id"]]  # the webhook carries the feed's own envelope
        assert Webhook(hook["secret"]).verify(body, headers) == event
        with pytest.raises(WebhookVerificationError):
            Webhook("whsec_" + base64.b64encode(b"\0" * 32).decode()).verify(body, headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(hook["secret"]).verify(body[:-1] + b',"points":0}', headers)
    assert [e["type"] for e in receiver.events()] == [
        "violation.recorded",
        "measure.triggered",
        "violation.recorded",
        "eligibility.suspended",
    ]
    assert [e["subject"] for e in receiver.events()] == [
        f"practitioners/{p}" for p in (person, person, suspended, suspended)
    ]
    assert receiver.requests[0]["path"] == "/hooks/points"

    log = _deliveries(hr, hook)
    assert [(d["webhook_id"], d["event_type"], d["status"], d["attempts"]) for d in log] == [
        (e["id"], e["type"], "delivered", 1) for e in receiver.events()
    ]
    for delivery in log:
        assert delivery["next_attempt_at"] is None and delivery["delivered_at"] is not None
        (attempt,) = delivery["attempt_log"]
        assert (attempt["status_code"], attempt["error"]) == (204, None)
        assert attempt["duration_ms"] >= 0

    # delivered once: later runs send nothing more
    assert dispatch(utc_now() + dt.timedelta(hours=30)) == {
        "fanned_out": 0,
        "delivered": 0,
        "retrying": 0,
        "failed": 0,
    }
    assert len(receiver.requests) == 4


def test_a_subscription_gets_only_the_event_types_it_asked_for_and_nothing_from_before_it(
    client, session, admin, inspector, local, receivers, dispatch
):
    before, hospital = admin.person()
    after = admin.practitioner()
    admin.register(after, hospital)
    inspector.violation(before, hospital, decided_on=_today(), **SUSPENDING)
    receiver = receivers()
    _subscribe(_hr(client, session, hospital), receiver, ["eligibility.suspended"])
    inspector.violation(after, hospital, decided_on=_today(), **SUSPENDING)
    dispatch()
    assert [(e["type"], e["data"]["practitioner_code"]) for e in receiver.events()] == [
        ("eligibility.suspended", after)
    ]


def test_the_delivery_log_pages_with_a_cursor(client, session, admin, inspector, local, receivers, dispatch):
    person, hospital = admin.person()
    hr = _hr(client, session, hospital)
    hook = _subscribe(hr, receivers(), ["violation.recorded"])
    for _ in range(3):
        inspector.violation(person, hospital, decided_on=_today())
    dispatch()
    first = hr.get(f"/v1/webhooks/{hook['id']}/deliveries", query={"limit": 2})
    second = hr.get(
        f"/v1/webhooks/{hook['id']}/deliveries", query={"limit": 2, "cursor": first["next_cursor"]}
    )
    assert len(first["items"]) == 2 and first["next_cursor"] is not None
    assert len(second["items"]) == 1 and second["next_cursor"] is None
    assert [d["id"] for d in first["items"] + second["items"]] == [d["id"] for d in _deliveries(hr, hook)]


# -- retries --------------------------------------------------------------------------------------


def test_a_receiver_that_fails_three_times_then_recovers_gets_every_event_exactly_once_by_id(
    client, session, admin, inspector, local, receivers, dispatch
):
    person, hospital = admin.person()
    suspended = admin.practitioner()
    admin.register(suspended, hospital)
    hr = _hr(client, session, hospital)
    receiver = receivers(lambda webhook_id, nth: 503 if nth <= 3 else 204)
    hook = _subscribe(hr, receiver)
    inspector.violation(person, hospital, behaviour_code="B2-01", decided_on=_today())
    inspector.violation(suspended, hospital, decided_on=_today(), **SUSPENDING)
    start = utc_now()

    results = [dispatch(start + dt.timedelta(hours=hours)) for hours in range(6)]
    assert results == [
        {"fanned_out": 4, "delivered": 0, "retrying": 4, "failed": 0},
        {"fanned_out": 0, "delivered": 0, "retrying": 4, "failed": 0},
        {"fanned_out": 0, "delivered": 0, "retrying": 4, "failed": 0},
        {"fanned_out": 0, "delivered": 4, "retrying": 0, "failed": 0},
        {"fanned_out": 0, "delivered": 0, "retrying": 0, "failed": 0},
        {"fanned_out": 0, "delivered": 0, "retrying": 0, "failed": 0},
    ]
    log = _deliveries(hr, hook)
    ids = [d["webhook_id"] for d in log]
    assert len(set(ids)) == 4
    assert receiver.accepted() == Counter({webhook_id: 1 for webhook_id in ids})
    assert Counter(r["id"] for r in receiver.requests) == Counter({webhook_id: 4 for webhook_id in ids})
    assert all(r["verified"] for r in receiver.requests)
    for delivery in log:
        assert (delivery["status"], delivery["attempts"]) == ("delivered", 4)
        assert [a["status_code"] for a in delivery["attempt_log"]] == [503, 503, 503, 204]
        assert [a["error"] for a in delivery["attempt_log"]] == ["HTTP 5xx"] * 3 + [None]
        assert [a["status_code"] for a in delivery["attempt_log"]] == [503] * 3 + [204]
        assert [_instant(a["attempted_at"]) for a in delivery["attempt_log"]] == [
            start + dt.timedelta(hours=hours) for hours in range(4)
        ]
        assert _instant(delivery["delivered_at"]) == start + dt.timedelta(hours=3)
    # the same event id on every attempt: a receiver that de-duplicates by id sees each event once
    assert {json.loads(r["body"])["id"] for r in receiver.requests} == set(ids)


def test_the_first_retry_comes_about_thirty_seconds_later_with_jitter(
    client, session, admin, inspector, local, receivers, dispatch
):
    person, hospital = admin.person()
    hr = _hr(client, session, hospital)
    hook = _subscribe(hr, receivers(lambda webhook_id, nth: 500), ["violation.recorded"])
    inspector.violation(person, hospital, decided_on=_today())
    start = utc_now()
    dispatch(start)
    (delivery,) = _deliveries(hr, hook)
    assert delivery["status"] == "pending"
    delay = _instant(delivery["next_attempt_at"]) - start
    assert FIRST_RETRY * 0.8 <= delay <= FIRST_RETRY * 1.2
    # not due before then: a run a second later sends nothing
    assert dispatch(start + dt.timedelta(seconds=1))["retrying"] == 0
    assert dispatch(start + dt.timedelta(seconds=37))["retrying"] == 1


def test_a_receiver_that_is_down_loses_nothing_for_a_day_and_the_delivery_fails_after_26_hours(
    client, session, admin, inspector, local, dispatch
):
    person, hospital = admin.person()
    hr = _hr(client, session, hospital)
    hook = hr.post(
        "/v1/webhooks",
        {"url": f"http://127.0.0.1:{_closed_port()}/down", "event_types": ["violation.recorded"]},
    )
    inspector.violation(person, hospital, decided_on=_today())
    inspector.violation(person, hospital, decided_on=_today())
    created = utc_now()

    next_attempts = []
    for hours in (0, 5, 10, 15, 20, 25):
        result = dispatch(created + dt.timedelta(hours=hours))
        assert result["retrying"] == 2 and result["failed"] == 0, hours
        log = _deliveries(hr, hook)
        assert [(d["status"], d["attempts"]) for d in log] == [("pending", len(next_attempts) + 1)] * 2
        next_attempts.append(_instant(log[0]["next_attempt_at"]))
        assert next_attempts[-1] > created + dt.timedelta(hours=hours)
    assert next_attempts == sorted(next_attempts) and len(set(next_attempts)) == len(next_attempts)

    assert dispatch(created + dt.timedelta(hours=27)) == {
        "fanned_out": 0,
        "delivered": 0,
        "retrying": 0,
        "failed": 2,
    }
    log = _deliveries(hr, hook)
    for delivery in log:
        assert (delivery["status"], delivery["attempts"], delivery["next_attempt_at"]) == ("failed", 7, None)
        assert [a["status_code"] for a in delivery["attempt_log"]] == [None] * 7
        assert all(a["error"] for a in delivery["attempt_log"])
    assert dispatch(created + dt.timedelta(hours=40))["failed"] == 0
    # the events themselves are still in the feed for the client to read
    assert {d["webhook_id"] for d in log} <= {
        e["id"] for e in hr.get("/v1/events", query={"limit": 500})["items"]
    }


def test_deleting_a_subscription_stops_its_pending_deliveries(
    client, session, admin, inspector, local, receivers, dispatch
):
    person, hospital = admin.person()
    hr = _hr(client, session, hospital)
    receiver = receivers(lambda webhook_id, nth: 503)
    hook = _subscribe(hr, receiver, ["violation.recorded"])
    inspector.violation(person, hospital, decided_on=_today())
    start = utc_now()
    dispatch(start)
    assert len(receiver.requests) == 1
    hr.client.delete(f"/v1/webhooks/{hook['id']}", headers=hr.headers)
    # the whole backlog was cancelled with the deletion, in the same transaction
    statuses = session.scalars(
        select(WebhookDelivery.status).where(WebhookDelivery.subscription_id == hook["id"])
    ).all()
    assert statuses == ["cancelled"]
    inspector.violation(person, hospital, decided_on=_today())
    assert dispatch(start + dt.timedelta(hours=1)) == {
        "fanned_out": 0,
        "delivered": 0,
        "retrying": 0,
        "failed": 0,
    }
    assert len(receiver.requests) == 1


def test_a_redirect_is_not_followed_and_does_not_count_as_delivered(
    client, session, admin, inspector, local, receivers, dispatch
):
    person, hospital = admin.person()
    hr = _hr(client, session, hospital)
    internal = receivers()  # stands for an address the service must never be made to call
    redirector = receivers(lambda webhook_id, nth: (302, internal.url))
    hook = _subscribe(hr, redirector, ["violation.recorded"])
    inspector.violation(person, hospital, decided_on=_today())

    result = dispatch()
    assert [r["status"] for r in redirector.requests] == [302]
    assert internal.requests == []  # nothing, neither POST nor GET, reached the other address
    assert result == {"fanned_out": 1, "delivered": 0, "retrying": 1, "failed": 0}
    (delivery,) = _deliveries(hr, hook)
    assert delivery["status"] == "pending"
    assert [a["status_code"] for a in delivery["attempt_log"]] == [302]


# -- scope ----------------------------------------------------------------------------------------


def test_an_hr_system_subscription_receives_only_its_staff_s_events(
    client, session, admin, inspector, reviewer, local, receivers, dispatch
):
    mine, theirs = admin.institution(), admin.institution()
    staff, stranger, both = admin.practitioner(), admin.practitioner(), admin.practitioner()
    admin.register(staff, mine)
    admin.register(stranger, theirs)
    admin.register(both, mine)
    admin.register(both, theirs)
    hr_receiver, reviewer_receiver = receivers(), receivers()
    wanted = [*WANTED, "registration.created"]
    _subscribe(_hr(client, session, mine), hr_receiver, wanted)
    _subscribe(reviewer, reviewer_receiver, wanted)
    inspector.violation(staff, mine, behaviour_code="B2-01", decided_on=_today())
    inspector.violation(stranger, theirs, decided_on=_today(), **SUSPENDING)
    inspector.violation(both, theirs, decided_on=_today(), **SUSPENDING)  # decided at the other site
    admin.register(admin.practitioner(), theirs)

    dispatch()
    received = [(e["data"]["practitioner_code"], e["type"]) for e in hr_receiver.events()]
    assert received == [
        (staff, "violation.recorded"),
        (staff, "measure.triggered"),
        (both, "eligibility.suspended"),
    ]
    assert all(r["verified"] for r in hr_receiver.requests + reviewer_receiver.requests)
    assert len(reviewer_receiver.events()) == 2 + 2 + 2 + 1  # the reviewer sees every institution


def test_a_slow_receiver_does_not_hold_up_api_writes_on_sqlite(tmp_path):
    import time

    from points_service import create_app
    from points_service.persistence.schema import upgrade_database
    from points_service.settings import Settings

    url = f"sqlite:///{tmp_path / 'slow.db'}"
    upgrade_database(url)
    app = create_app(Settings(database_url=url, webhook_allow_private=True))
    rt = app.extensions["points_service"]
    admin = Api(app.test_client(), make_key(rt.sessions, "admin"))
    arrived, release = threading.Event(), threading.Event()

    def slow(webhook_id, nth):
        arrived.set()
        release.wait(1.5)  # a receiver taking its time (the dispatcher waits up to 5 s)
        return 204

    receiver = Receiver(slow)
    try:
        _subscribe(admin, receiver, ["registration.created"])
        admin.person()
        dispatcher = threading.Thread(
            target=run_job,
            args=(rt.sessions, "dispatch-webhooks"),
            kwargs={"settings": rt.settings, "pii": rt.pii, "now": utc_now()},
        )
        dispatcher.start()
        assert arrived.wait(5)
        started = time.monotonic()
        admin.institution()  # an unrelated write while the delivery is in flight
        took = time.monotonic() - started
        release.set()
        dispatcher.join(timeout=10)
        assert took < 0.5, f"the write waited {took:.2f} s for the webhook receiver"
    finally:
        release.set()
        receiver.stop()
        rt.sessions.kw["bind"].dispose()
