"""Webhooks: one bad subscriber never holds back another, and no request leaves for a private address.

Receivers run on loopback (tests.api.test_webhooks.Receiver). Name resolution is stood in for by
replacing `webhooks.resolve` (this sandbox has no DNS): the dispatcher must look a host up at
delivery, refuse any address that is not public, and connect to the very address it checked.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import time

import pytest
from factories import Api, make_key
from sqlalchemy import func, select
from test_webhooks import _deliveries, _hr, _subscribe, _today

from points_service.clock import utc_now
from points_service.persistence.models import WebhookDelivery, WebhookSubscription
from points_service.persistence.pii import seal
from points_service.services import webhooks
from points_service.services.keys import revoke_key, rotate_key

PROBLEM = "application/problem+json"
PUBLIC = ipaddress.ip_address("93.184.215.14")
LOOPBACK = ipaddress.ip_address("127.0.0.1")


@pytest.fixture
def resolver(monkeypatch):
    """resolver[name] = [addresses]: what each host name resolves to; other names do not resolve."""
    table: dict[str, list] = {}

    def resolve(host: str, port: int):
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        if host not in table:
            raise OSError("no such name")
        return list(table[host])

    monkeypatch.setattr(webhooks, "resolve", resolve)
    return table


# -- creation: the whole URL is checked --------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pass@hooks.example.com/x",
        "https://user@hooks.example.com/x",
        "https://hooks.example.com\\@127.0.0.1/x",
        "https://hooks.example.com/x\r\nX-Injected: 1",
        "https://hooks.example.com/x y",
        "https://hooks.example.com:65536/x",
        "https://hooks.example.com:0/x",
        "https://hooks.example.com:http/x",
        "https://" + "a" * 64 + ".example.com/x",
        "https://[::1/x",
        "https://[::1]/x",
        "https://100.100.100.200/latest/meta-data",
        "https://100.64.0.1/x",
        "https://[2002:7f00:1::]/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://[64:ff9b::a00:1]/x",
        "https://169.254.169.254/x",
        "https://hooks.example.com/x#fragment",
        "https://exa_mple.com/x",
        "https://-bad-.example.com/x",
        "https://hooks.example.com/点",
        "http://hooks.example.com/x",
    ],
)
def test_a_subscriber_url_is_checked_whole_at_creation(client, session, resolver, url):
    resolver["hooks.example.com"] = [PUBLIC]
    reviewer = Api(client, make_key(session, "reviewer"))
    response = client.post(
        "/v1/webhooks", json={"url": url, "event_types": ["violation.recorded"]}, headers=reviewer.headers
    )
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    assert list(response.get_json()["errors"]) == ["url"]
    assert session.scalar(select(func.count()).select_from(WebhookSubscription)) == 0


def test_an_internationalised_host_is_stored_in_its_idna_form(client, session, resolver):
    resolver["xn--fiqs8s.example.com"] = [PUBLIC]
    reviewer = Api(client, make_key(session, "reviewer"))
    refused = reviewer.post(
        "/v1/webhooks",
        {"url": "https://中国.example.com/钩子?a=1", "event_types": ["violation.recorded"]},
        status=422,
    )
    assert "percent-encoded" in refused["detail"]
    hook = reviewer.post(
        "/v1/webhooks", {"url": "https://中国.Example.com:8443/x?a=1", "event_types": ["violation.recorded"]}
    )
    assert hook["url"] == "https://xn--fiqs8s.example.com:8443/x?a=1"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("100.64.0.1", False),
        ("100.100.100.200", False),
        ("169.254.169.254", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:5db8:d70e::", True),  # 6to4 of 93.184.215.14
        ("::ffff:10.0.0.1", False),
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
    ],
)
def test_only_globally_routable_addresses_are_public(address, public):
    assert webhooks.is_public(ipaddress.ip_address(address)) is public


# -- delivery: resolved again, pinned, each failure its own ----------------------------------------


def _subscription_row(session, owner_key_id: int, url: str, keys) -> WebhookSubscription:
    """A subscription stored without the API's checks, as one stored before them would be."""
    row = WebhookSubscription(
        owner_key_id=owner_key_id,
        role="admin",
        institution_id=None,
        url=url,
        event_types=["violation.recorded"],
        secret_cipher=b"",
        cursor=0,
        cursor_txid=0,
        created_at=utc_now(),
    )
    session.add(row)
    session.flush()
    row.secret_cipher = seal(keys, b"whsec_" + b"A" * 44, associated_data=f"webhook:{row.id}".encode())
    session.flush()
    return row


@pytest.mark.parametrize(
    "bad_url",
    [
        "https://user:pass@hooks.example.com/x",
        "https://hooks.example.com\\x",
        "https://hooks.example.com:99999/x",
        "https://[::1/x",
        "https://" + "a" * 64 + ".example.com/x",
        "ftp://hooks.example.com/x",
    ],
)
def test_one_bad_subscriber_never_holds_back_another(
    client, session, admin, inspector, local, receivers, dispatch, bad_url
):
    person, hospital = admin.person()
    good = receivers()
    hook = _subscribe(Api(client, make_key(session, "reviewer")), good, ["violation.recorded"])
    bad = _subscription_row(session, hook_owner(session, hook), bad_url, local.pii)
    for _ in range(3):
        inspector.violation(person, hospital, decided_on=_today())
    start = utc_now()
    first = dispatch(start)
    assert first["delivered"] == 3
    # after the lease and any retry time, nothing is sent to the good receiver twice
    dispatch(start + dt.timedelta(minutes=10))
    dispatch(start + dt.timedelta(hours=1))
    assert sorted(good.accepted().values()) == [1, 1, 1]
    errors = {
        a.error
        for d in session.scalars(select(WebhookDelivery).where(WebhookDelivery.subscription_id == bad.id))
        for a in attempts(session, d.id)
    }
    assert errors == {"unreachable"}


def hook_owner(session, hook: dict) -> int:
    return session.get(WebhookSubscription, hook["id"]).owner_key_id


def attempts(session, delivery_id: int):
    from points_service.persistence.models import WebhookAttempt

    return session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id)).all()


def test_a_name_that_resolves_to_loopback_at_delivery_gets_nothing_dns_rebinding(
    client, session, admin, inspector, receivers, resolver, dispatch
):
    person, hospital = admin.person()
    victim = receivers()  # stands for a service on the dispatcher's own loopback
    resolver["rebind.example.com"] = [PUBLIC]
    reviewer = Api(client, make_key(session, "reviewer"))
    hook = reviewer.post(
        "/v1/webhooks",
        {
            "url": f"https://rebind.example.com:{victim.server.server_port}/x",
            "event_types": ["violation.recorded"],
        },
    )
    resolver["rebind.example.com"] = [LOOPBACK]  # the name's owner points it at us
    inspector.violation(person, hospital, decided_on=_today())
    result = dispatch()
    assert victim.requests == []
    assert result["retrying"] == 1
    (delivery,) = _deliveries(reviewer, hook)
    assert [a["error"] for a in delivery["attempt_log"]] == ["unreachable"]


def test_a_delivery_connects_to_the_address_it_checked_and_names_the_host(
    client, session, admin, inspector, local, receivers, resolver, dispatch
):
    person, hospital = admin.person()
    receiver = receivers()
    resolver["receiver.example.com"] = [LOOPBACK]
    reviewer = Api(client, make_key(session, "reviewer"))
    hook = reviewer.post(
        "/v1/webhooks",
        {
            "url": f"http://receiver.example.com:{receiver.server.server_port}/hooks/points",
            "event_types": ["violation.recorded"],
        },
    )
    receiver.secret = hook["secret"]
    inspector.violation(person, hospital, decided_on=_today())
    assert dispatch()["delivered"] == 1
    [request] = receiver.requests
    assert request["verified"]
    assert request["headers"]["host"] == f"receiver.example.com:{receiver.server.server_port}"
    assert request["path"] == "/hooks/points"


def test_attempt_errors_are_neutral_words(
    client, session, admin, inspector, local, receivers, resolver, dispatch, monkeypatch
):
    person, hospital = admin.person()
    reviewer = Api(client, make_key(session, "reviewer"))
    failing = receivers(lambda webhook_id, nth: 500)
    slow = receivers(lambda webhook_id, nth: time.sleep(0.6) or 204)
    with_socket_closed = receivers()
    closed_url = with_socket_closed.url
    with_socket_closed.stop()
    resolver["nowhere.example.com"] = []
    hooks = {
        "failing": _subscribe(reviewer, failing, ["violation.recorded"]),
        "slow": _subscribe(reviewer, slow, ["violation.recorded"]),
        "closed": reviewer.post("/v1/webhooks", {"url": closed_url, "event_types": ["violation.recorded"]}),
        "unresolved": reviewer.post(
            "/v1/webhooks", {"url": "http://nowhere.example.com/x", "event_types": ["violation.recorded"]}
        ),
    }
    monkeypatch.setattr(webhooks, "TIMEOUT_SECONDS", 0.3)
    inspector.violation(person, hospital, decided_on=_today())
    dispatch()
    errors = {name: _deliveries(reviewer, hook)[0]["attempt_log"][0]["error"] for name, hook in hooks.items()}
    assert errors == {
        "failing": "HTTP 5xx",
        "slow": "timeout",
        "closed": "unreachable",
        "unresolved": "unreachable",
    }


# -- a subscription lives as long as its creator's key -----------------------------------------------


def test_revoking_the_key_that_created_a_subscription_disables_it_and_cancels_its_backlog(
    client, session, admin, inspector, local, receivers, dispatch
):
    person, hospital = admin.person()
    key = make_key(session, "hr_system", institution_code=hospital)
    hr = Api(client, key)
    down = receivers(lambda webhook_id, nth: 503)
    hook = _subscribe(hr, down, ["violation.recorded"])
    inspector.violation(person, hospital, decided_on=_today())
    start = utc_now()
    dispatch(start)
    inspector.violation(person, hospital, decided_on=_today())
    dispatch(start)  # fanned out, not yet due again
    revoke_key(session, key[:12], now=utc_now())
    sent = len(down.requests)
    assert dispatch(start + dt.timedelta(hours=2))["delivered"] == 0
    assert len(down.requests) == sent
    # the hospital's other key still reads the subscription and its log
    other = _hr(client, session, hospital)
    [listed] = other.get("/v1/webhooks")["items"]
    assert listed["disabled_reason"] == "key_revoked" and listed["disabled_at"]
    assert [d["status"] for d in _deliveries(other, hook)] == ["cancelled", "cancelled"]


def test_an_expired_key_stops_its_subscriptions_at_the_next_dispatch(
    client, session, admin, inspector, local, receivers, dispatch
):
    person, hospital = admin.person()
    soon = utc_now() + dt.timedelta(minutes=5)
    hr = Api(client, make_key(session, "hr_system", institution_code=hospital, expires_at=soon))
    receiver = receivers()
    hook = _subscribe(hr, receiver, ["violation.recorded"])
    inspector.violation(person, hospital, decided_on=_today())
    result = dispatch(soon + dt.timedelta(seconds=1))
    assert result["disabled"] == 1 and result["delivered"] == 0
    assert receiver.requests == []
    row = session.get(WebhookSubscription, hook["id"])
    session.refresh(row)
    assert row.disabled_reason == "key_expired"


def test_rotating_a_key_hands_its_subscriptions_to_the_new_key(
    client, session, admin, inspector, local, receivers, dispatch
):
    person, hospital = admin.person()
    old = make_key(session, "hr_system", institution_code=hospital)
    receiver = receivers()
    hook = _subscribe(Api(client, old), receiver, ["violation.recorded"])
    new_key, _ = rotate_key(session, old[:12], grace=dt.timedelta(0), now=utc_now())
    inspector.violation(person, hospital, decided_on=_today())
    assert dispatch(utc_now() + dt.timedelta(seconds=1))["delivered"] == 1
    row = session.get(WebhookSubscription, hook["id"])
    session.refresh(row)
    assert (row.owner_key_id, row.disabled_at) == (new_key.id, None)
