"""Webhook subscriptions and deliveries: signed the Standard Webhooks way, at least once, retried
with exponential backoff and jitter for more than a day, every attempt logged.

Deliveries are fanned out from the outbox by the dispatcher sweep, never from a request, so a
receiver that is down delays nothing and loses nothing.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import random
import secrets
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from ..clock import utc_now
from ..persistence.models import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookSubscription
from ..persistence.pii import PiiKeys, seal, unseal
from .access import Principal, require
from .audit import record_audit
from .errors import NotFound, RuleViolation
from .events import EVENT_TYPES, cloud_event, latest_position, position, positioned_after, visible_to

FIRST_RETRY = dt.timedelta(seconds=30)
MAX_BACKOFF = dt.timedelta(hours=4)
# retried for at least 24 hours from the event's first attempt (issue 4); then marked failed
GIVE_UP_AFTER = dt.timedelta(hours=26)
TIMEOUT_SECONDS = 5
FANOUT_BATCH = 500
DELIVERY_BATCH = 100


def _aad(subscription_id: int) -> bytes:
    return f"webhook:{subscription_id}".encode()


def _encrypt_secret(keys: PiiKeys, subscription_id: int, secret: str) -> bytes:
    return seal(keys, secret.encode(), associated_data=_aad(subscription_id))


def _decrypt_secret(keys: PiiKeys, subscription: WebhookSubscription) -> str:
    return unseal(keys, subscription.secret_cipher, associated_data=_aad(subscription.id)).decode()


def check_url(url: str, *, allow_private: bool) -> None:
    """HTTPS only, never to private, loopback or link-local addresses (SSRF), unless allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise RuleViolation(
            "the URL must be an absolute https:// URL", rule="architecture.md Outbox", field="url"
        )
    if allow_private:
        return
    if parts.scheme != "https":
        raise RuleViolation("the URL must use https", rule="architecture.md Outbox", field="url")
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 443)}
    except OSError:
        raise RuleViolation(
            f"cannot resolve {parts.hostname}", rule="architecture.md Outbox", field="url"
        ) from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast:
            raise RuleViolation(
                f"{parts.hostname} resolves to a non-public address",
                rule="architecture.md Outbox",
                field="url",
            )


@dataclass(frozen=True)
class CreateSubscription:
    url: str
    event_types: tuple[str, ...]


def create_subscription(
    session: Session,
    principal: Principal,
    cmd: CreateSubscription,
    *,
    keys: PiiKeys,
    allow_private: bool,
    now: dt.datetime,
    request_id: str | None = None,
) -> tuple[WebhookSubscription, str]:
    """Returns the subscription and its signing secret, shown this once."""
    require(principal, "webhooks:manage")
    unknown = sorted(set(cmd.event_types) - set(EVENT_TYPES))
    if unknown:
        raise RuleViolation(
            f"unknown event types: {', '.join(unknown)}", rule="api.md events", field="event_types"
        )
    check_url(cmd.url, allow_private=allow_private)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    latest_txid, latest = latest_position(session)
    subscription = WebhookSubscription(
        owner_key_id=principal.key_id,
        role=principal.role,
        institution_id=principal.institution_id,
        url=cmd.url,
        event_types=sorted(set(cmd.event_types)),
        secret_cipher=b"",
        cursor=latest,  # from now on; the feed serves the past
        cursor_txid=latest_txid,
        created_at=now,
    )
    session.add(subscription)
    session.flush()
    subscription.secret_cipher = _encrypt_secret(keys, subscription.id, secret)
    record_audit(
        session,
        principal,
        action="webhook.created",
        object_type="webhook",
        object_id=subscription.id,
        detail={"url": cmd.url, "event_types": subscription.event_types},
        now=now,
        request_id=request_id,
    )
    return subscription, secret


def subscription_principal(subscription: WebhookSubscription) -> Principal:
    """A subscription reads the feed with the scope of the key that created it."""
    return Principal(
        key_id=subscription.owner_key_id,
        name=f"webhook:{subscription.id}",
        role=subscription.role,
        institution_id=subscription.institution_id,
    )


def _visible(session: Session, principal: Principal, subscription_id: int) -> WebhookSubscription:
    require(principal, "webhooks:manage")
    subscription = session.get(WebhookSubscription, subscription_id)
    if (
        subscription is None
        or subscription.deleted_at is not None
        or (
            principal.role != "admin"
            and subscription.owner_key_id != principal.key_id
            and not (
                principal.role == "hr_system" and subscription.institution_id == principal.institution_id
            )
        )
    ):
        raise NotFound(f"no webhook {subscription_id}")
    return subscription


def list_subscriptions(session: Session, principal: Principal) -> list[WebhookSubscription]:
    require(principal, "webhooks:manage")
    query = (
        select(WebhookSubscription)
        .where(WebhookSubscription.deleted_at.is_(None))
        .order_by(WebhookSubscription.id)
    )
    if principal.role == "hr_system":
        query = query.where(WebhookSubscription.institution_id == principal.institution_id)
    elif principal.role != "admin":
        query = query.where(WebhookSubscription.owner_key_id == principal.key_id)
    return list(session.scalars(query))


def delete_subscription(
    session: Session, principal: Principal, subscription_id: int, *, now, request_id=None
):
    subscription = _visible(session, principal, subscription_id)
    subscription.deleted_at = now
    record_audit(
        session,
        principal,
        action="webhook.deleted",
        object_type="webhook",
        object_id=subscription.id,
        detail={"url": subscription.url},
        now=now,
        request_id=request_id,
    )


def deliveries_of(
    session: Session, principal: Principal, subscription_id: int, *, after: int | None, limit: int
) -> tuple[list[tuple[WebhookDelivery, OutboxEvent, list[WebhookAttempt]]], int | None]:
    _visible(session, principal, subscription_id)
    query = (
        select(WebhookDelivery, OutboxEvent)
        .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.subscription_id == subscription_id)
        .order_by(WebhookDelivery.id)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(WebhookDelivery.id > after)
    rows = list(session.execute(query))
    page = rows[:limit]
    attempts: dict[int, list[WebhookAttempt]] = {}
    if page:
        for attempt in session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_([d.id for d, _ in page]))
            .order_by(WebhookAttempt.id)
        ):
            attempts.setdefault(attempt.delivery_id, []).append(attempt)
    items = [(d, e, attempts.get(d.id, [])) for d, e in page]
    return items, (page[-1][0].id if len(rows) > limit and page else None)


# -- the dispatcher (a sweep) ---------------------------------------------------------------------


def backoff(attempts: int, *, rng: random.Random | None = None) -> dt.timedelta:
    """30 s, 1 min, 2 min … capped at 4 h, each with ±20 % jitter so retries do not stampede."""
    base = min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), MAX_BACKOFF)
    return base * (rng or random).uniform(0.8, 1.2)


def fan_out(session: Session, *, now: dt.datetime) -> int:
    """Turn new outbox events into deliveries for every live subscription that wants them."""
    created = 0
    for subscription in session.scalars(
        select(WebhookSubscription).where(WebhookSubscription.deleted_at.is_(None)).with_for_update()
    ):
        query = positioned_after(session, (subscription.cursor_txid, subscription.cursor)).limit(FANOUT_BATCH)
        events = list(session.scalars(query))
        if not events:
            continue
        scope = visible_to(subscription_principal(subscription))
        visible = (
            set(events)
            if scope is None
            else set(
                session.scalars(select(OutboxEvent).where(OutboxEvent.id.in_([e.id for e in events]), scope))
            )
        )
        for event in events:
            if event in visible and event.type in subscription.event_types:
                session.add(
                    WebhookDelivery(
                        subscription_id=subscription.id,
                        event_id=event.id,
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
                created += 1
        subscription.cursor_txid, subscription.cursor = position(events[-1])
    session.flush()
    return created


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not an instruction: following it would send us to an address the
    URL check never saw (SSRF), and a 2xx there would count as a delivery the receiver never took."""

    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return None, str(getattr(exc, "reason", exc))[:500]


LEASE = dt.timedelta(minutes=2)


@dataclass(frozen=True)
class _Send:
    delivery_id: int
    url: str
    secret: str
    event_id: str
    body: str


def claim_due(session: Session, *, keys: PiiKeys, now: dt.datetime) -> tuple[list[_Send], int]:
    """Take the due deliveries for a while (a lease), so no other dispatcher sends them meanwhile.

    Returns what to send, and how many were dropped because their subscription was deleted.
    """
    query = (
        select(WebhookDelivery, WebhookSubscription, OutboxEvent)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.id)
        .limit(DELIVERY_BATCH)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=WebhookDelivery)
    sends, dropped = [], 0
    secrets_by_subscription: dict[int, str] = {}
    for delivery, subscription, event in session.execute(query).all():
        if subscription.deleted_at is not None:
            delivery.status = "failed"
            dropped += 1
            continue
        secret = secrets_by_subscription.setdefault(subscription.id, _decrypt_secret(keys, subscription))
        delivery.next_attempt_at = now + LEASE  # if this dispatcher dies, the delivery is due again
        sends.append(
            _Send(
                delivery.id,
                subscription.url,
                secret,
                event.event_id,
                json.dumps(cloud_event(event), separators=(",", ":"), ensure_ascii=False),
            )
        )
    session.flush()
    return sends, dropped


def send(item: _Send) -> tuple[int | None, str | None, int]:
    """One signed POST, outside any database transaction (a slow receiver holds no lock)."""
    # the header is the real moment of sending (receivers check it against their clock)
    sent_at = utc_now()
    headers = {
        "Content-Type": "application/cloudevents+json; charset=utf-8",
        "User-Agent": "points-service-webhooks/1",
        "webhook-id": item.event_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(item.secret).sign(item.event_id, sent_at, item.body),
    }
    started = time.monotonic()
    status, error = _post(item.url, item.body.encode("utf-8"), headers)
    return status, error, int((time.monotonic() - started) * 1000)


def record(
    session: Session, results: list[tuple[_Send, tuple[int | None, str | None, int]]], *, now: dt.datetime
) -> dict[str, int]:
    """Log every attempt; mark delivered, schedule the retry with backoff, or give up after a day."""
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    for item, (status, error, duration_ms) in results:
        delivery = session.get(WebhookDelivery, item.delivery_id)
        if delivery is None or delivery.status != "pending":
            continue
        session.add(
            WebhookAttempt(
                delivery_id=delivery.id,
                attempted_at=now,
                status_code=status,
                error=error,
                duration_ms=duration_ms,
            )
        )
        delivery.attempts += 1
        if status is not None and 200 <= status < 300:
            delivery.status = "delivered"
            delivery.delivered_at = now
            counts["delivered"] += 1
        elif now - delivery.created_at >= GIVE_UP_AFTER:
            delivery.status = "failed"
            counts["failed"] += 1
        else:
            delivery.next_attempt_at = now + backoff(delivery.attempts)
            counts["retrying"] += 1
    session.flush()
    return counts
