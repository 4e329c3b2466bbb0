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
import logging
import random
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import idna
import urllib3
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, joinedload, selectinload
from standardwebhooks import Webhook

from ..clock import utc_now
from ..persistence.models import ApiKey, OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookSubscription
from ..persistence.pii import PiiKeys, seal, unseal
from .access import Principal, require
from .audit import record_audit
from .errors import NotFound, RuleViolation
from .events import EVENT_TYPES, cloud_event, latest_position, position, positioned_after, visible_to

log = logging.getLogger("points_service.webhooks")
FIRST_RETRY = dt.timedelta(seconds=30)
MAX_BACKOFF = dt.timedelta(hours=4)
# retried for at least 24 hours from the event's first attempt; then marked failed
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


@dataclass(frozen=True)
class Target:
    """A subscriber URL taken apart: what a delivery connects to, and the URL as stored."""

    scheme: str
    host: str  # ASCII (IDNA) host name, or an IP address without brackets
    port: int
    path: str  # with the query, as sent in the request line

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = {"https": 443, "http": 80}[self.scheme]
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.path}"


def parse_url(url: str, *, allow_private: bool) -> Target:
    """The whole URL checked before it is stored: https (http only where private addresses are
    allowed), no credentials, a host name valid under IDNA or an IP literal, a port in range, no
    fragment, nothing that is not printable ASCII after the host's encoding. A 422 names `url`."""

    def refuse(why: str) -> RuleViolation:
        return RuleViolation(f"url: {why}", rule="docs/api.md The change feed and webhooks", field="url")

    if any(c.isspace() or not c.isprintable() for c in url) or "\\" in url:
        raise refuse("must not contain spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
        hostname = parts.hostname
    except ValueError as exc:  # an unclosed IPv6 bracket, a port that is not a number or > 65535
        raise refuse(f"is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not hostname:
        raise refuse("must be an absolute https:// URL")
    if scheme == "http" and not allow_private:
        raise refuse("must use https")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise refuse("must not hold credentials (user:password@); the signature authenticates us")
    if parts.fragment or url.endswith("#"):
        raise refuse("must not have a fragment")
    if port == 0:
        raise refuse("port must be between 1 and 65535")
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        address = None
    if address is None:
        try:
            host = idna.encode(hostname, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise refuse(f"host is not a valid domain name ({exc})") from None
    else:
        host = str(address)
        if not allow_private and not is_public(address):
            raise refuse(f"{host} is not a public address")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if not path.isascii():
        raise refuse("path and query must be percent-encoded ASCII")
    return Target(scheme, host.lower(), port or (443 if scheme == "https" else 80), path)


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally routable, and so is any IPv4 address it carries (6to4, NAT64, Teredo, mapped):
    2002:7f00:1:: is 127.0.0.1 by another name, 100.64.0.0/10 (CGNAT, cloud metadata) is not global."""
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
        if address in NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        return all(is_public(v4) for v4 in embedded if v4 is not None)
    return True


NAT64 = ipaddress.ip_network("64:ff9b::/96")


def resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every address a host name resolves to now (an IP literal is itself). Module-level, so the
    tests can stand in for DNS, which this sandbox has not."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))


def check_url(url: str, *, allow_private: bool) -> Target:
    """parse_url, and at creation also the host's addresses now: all must be public. Delivery checks
    them again (a name may later resolve elsewhere) and connects only to an address it checked."""
    target = parse_url(url, allow_private=allow_private)
    if allow_private:
        return target
    try:
        addresses = resolve(target.host, target.port)
    except OSError:
        raise RuleViolation(
            f"url: cannot resolve {target.host}", rule="docs/api.md The change feed and webhooks", field="url"
        ) from None
    if not addresses or not all(is_public(a) for a in addresses):
        raise RuleViolation(
            f"url: {target.host} resolves to a non-public address",
            rule="docs/api.md The change feed and webhooks",
            field="url",
        )
    return target


@dataclass(frozen=True)
class NewSubscription:
    """A subscription just made, and its signing secret: shown this once, never stored in clear."""

    subscription: WebhookSubscription
    secret: str

    def __getattr__(self, name: str) -> Any:
        return getattr(self.subscription, name)


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
) -> NewSubscription:
    """Returns the subscription and its signing secret, shown this once."""
    require(principal, "webhooks:manage")
    unknown = sorted(set(cmd.event_types) - set(EVENT_TYPES))
    if unknown:
        raise RuleViolation(
            f"unknown event types: {', '.join(unknown)}",
            rule="docs/api.md The change feed and webhooks",
            field="event_types",
        )
    target = check_url(cmd.url, allow_private=allow_private)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    latest_txid, latest = latest_position(session)
    subscription = WebhookSubscription(
        owner_key_id=principal.key_id,
        role=principal.role,
        institution_id=principal.institution_id,
        url=target.url,
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
        detail={"url": target.url, "event_types": subscription.event_types},
        now=now,
        request_id=request_id,
    )
    return NewSubscription(subscription, secret)


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
    session: Session, principal: Principal, subscription_id: int, *, now: dt.datetime, request_id=None
) -> None:
    subscription = _visible(session, principal, subscription_id)
    subscription.deleted_at = now
    cancelled = cancel_backlog(session, [subscription.id])
    record_audit(
        session,
        principal,
        action="webhook.deleted",
        object_type="webhook",
        object_id=subscription.id,
        detail={"url": subscription.url, "cancelled_deliveries": cancelled},
        now=now,
        request_id=request_id,
    )


def cancel_backlog(session: Session, subscription_ids: list[int]) -> int:
    """Every pending delivery of these subscriptions ends as `cancelled`, in one statement."""
    if not subscription_ids:
        return 0
    result = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.subscription_id.in_(subscription_ids), WebhookDelivery.status == "pending")
        .values(status="cancelled")
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    return result.rowcount  # type: ignore[attr-defined]


def disable_for_key(session: Session, key_id: int, *, reason: str, now: dt.datetime) -> int:
    """The key that created a subscription was revoked or expired: its subscriptions stop at once and
    their backlogs are cancelled (a subscription acts with its creator's authority). Returns how many."""
    ids = list(
        session.scalars(
            select(WebhookSubscription.id).where(
                WebhookSubscription.owner_key_id == key_id,
                WebhookSubscription.deleted_at.is_(None),
                WebhookSubscription.disabled_at.is_(None),
            )
        )
    )
    if ids:
        session.execute(
            update(WebhookSubscription)
            .where(WebhookSubscription.id.in_(ids))
            .values(disabled_at=now, disabled_reason=reason)
            .execution_options(synchronize_session=False)
        )
        cancel_backlog(session, ids)
    return len(ids)


def disable_orphaned(session: Session, *, now: dt.datetime) -> int:
    """Subscriptions whose creator's key has expired (or was revoked behind the service's back, in
    the database) are disabled before anything is fanned out or sent."""
    orphaned = session.execute(
        select(ApiKey.id, ApiKey.revoked_at)
        .join(WebhookSubscription, WebhookSubscription.owner_key_id == ApiKey.id)
        .where(
            WebhookSubscription.deleted_at.is_(None),
            WebhookSubscription.disabled_at.is_(None),
            or_(ApiKey.revoked_at.is_not(None), ApiKey.expires_at <= now),
        )
        .distinct()
    ).all()
    return sum(
        disable_for_key(session, key_id, reason="key_revoked" if revoked else "key_expired", now=now)
        for key_id, revoked in orphaned
    )


def deliveries_of(
    session: Session, principal: Principal, subscription_id: int, *, after: int | None, limit: int
) -> tuple[list[WebhookDelivery], int | None]:
    """The subscription's deliveries, oldest first, each with its event and every attempt."""
    _visible(session, principal, subscription_id)
    query = (
        select(WebhookDelivery)
        .options(joinedload(WebhookDelivery.event), selectinload(WebhookDelivery.attempt_log))
        .where(WebhookDelivery.subscription_id == subscription_id)
        .order_by(WebhookDelivery.id)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(WebhookDelivery.id > after)
    rows = list(session.scalars(query))
    page = rows[:limit]
    return page, (page[-1].id if len(rows) > limit and page else None)


# -- the dispatcher (a sweep) ---------------------------------------------------------------------


def backoff(attempts: int, *, rng: random.Random | None = None) -> dt.timedelta:
    """30 s, 1 min, 2 min … capped at 4 h, each with ±20 % jitter so retries do not stampede."""
    base = min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), MAX_BACKOFF)
    return base * (rng or random).uniform(0.8, 1.2)


def fan_out(session: Session, *, now: dt.datetime) -> int:
    """Turn new outbox events into deliveries for every live subscription that wants them."""
    created = 0
    for subscription in session.scalars(
        select(WebhookSubscription)
        .where(WebhookSubscription.deleted_at.is_(None), WebhookSubscription.disabled_at.is_(None))
        .with_for_update()
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


LEASE = dt.timedelta(minutes=2)


@dataclass(frozen=True)
class _Send:
    delivery_id: int
    url: str
    secret: str
    event_id: str
    body: str
    allow_private: bool = False


def claim_due(
    session: Session, *, keys: PiiKeys, now: dt.datetime, allow_private: bool = False
) -> tuple[list[_Send], list[tuple[_Send, Outcome]]]:
    """Take the due deliveries for a while (a lease), so no other dispatcher sends them meanwhile.

    Returns what to send, and the deliveries that cannot be sent at all (their secret cannot be
    read), each with its outcome, to be recorded like any failed attempt.
    """
    query = (
        select(WebhookDelivery, WebhookSubscription, OutboxEvent)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
        .where(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            WebhookSubscription.deleted_at.is_(None),
            WebhookSubscription.disabled_at.is_(None),
        )
        .order_by(WebhookDelivery.id)
        .limit(DELIVERY_BATCH)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=WebhookDelivery)
    sends: list[_Send] = []
    unsendable: list[tuple[_Send, Outcome]] = []
    secrets_by_subscription: dict[int, str | None] = {}
    for delivery, subscription, event in session.execute(query).all():
        if subscription.id not in secrets_by_subscription:
            try:
                secrets_by_subscription[subscription.id] = _decrypt_secret(keys, subscription)
            except Exception:  # a retired key, a damaged row: this subscription only
                log.exception("webhook %s: its signing secret cannot be read", subscription.id)
                secrets_by_subscription[subscription.id] = None
        secret = secrets_by_subscription[subscription.id]
        delivery.next_attempt_at = now + LEASE  # if this dispatcher dies, the delivery is due again
        item = _Send(
            delivery.id,
            subscription.url,
            secret or "",
            event.event_id,
            json.dumps(cloud_event(event), separators=(",", ":"), ensure_ascii=False),
            allow_private,
        )
        if secret is None:
            unsendable.append((item, Outcome(None, "not sent: the signing secret cannot be read", 0)))
        else:
            sends.append(item)
    session.flush()
    return sends, unsendable


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None  # neutral words only: nothing that maps the receiver's network
    duration_ms: int


def send(item: _Send) -> Outcome:
    """One signed POST, outside any database transaction (a slow receiver holds no lock).

    Never raises: whatever goes wrong is this delivery's failed attempt, so that every other
    delivery of the batch is still sent and recorded once. The host is resolved now and the POST
    goes to an address that was checked now (no second look-up by the HTTP library, which DNS
    rebinding could point at loopback).
    """
    started = time.monotonic()

    def outcome(status: int | None, error: str | None) -> Outcome:
        return Outcome(status, error, int((time.monotonic() - started) * 1000))

    try:
        target = parse_url(item.url, allow_private=item.allow_private)
        addresses = resolve(target.host, target.port)
        allowed = [a for a in addresses if item.allow_private or is_public(a)]
        if not allowed:
            log.warning("webhook delivery %s: %s has no public address", item.delivery_id, target.host)
            return outcome(None, "unreachable")
        # the header is the real moment of sending (receivers check it against their clock)
        sent_at = utc_now()
        headers = {
            "Host": target.host if target.port in (80, 443) else f"{target.host}:{target.port}",
            "Content-Type": "application/cloudevents+json; charset=utf-8",
            "User-Agent": "points-service-webhooks/1",
            "webhook-id": item.event_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": Webhook(item.secret).sign(item.event_id, sent_at, item.body),
        }
        status = _post(target, allowed[0], item.body.encode("utf-8"), headers)
    except urllib3.exceptions.NewConnectionError:
        # checked first: urllib3 makes a refused connection a kind of ConnectTimeoutError
        return outcome(None, "unreachable")
    except urllib3.exceptions.TimeoutError:
        return outcome(None, "timeout")
    except Exception as exc:  # refused, reset, TLS, DNS: all "unreachable" to the subscriber
        log.warning("webhook delivery %s failed: %s", item.delivery_id, exc.__class__.__name__)
        return outcome(None, "unreachable")
    if 200 <= status < 300:
        return outcome(status, None)
    return outcome(status, f"HTTP {status // 100}xx")


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _post(target: Target, address: Address, body: bytes, headers: dict[str, str]) -> int:
    """POST to `address`, speaking to `target.host` (TLS server name and certificate check), and
    never following a redirect: it is an answer, not an instruction (it could name any address)."""
    timeout = urllib3.Timeout(total=TIMEOUT_SECONDS)
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            str(address),
            target.port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
        )
    else:
        pool = urllib3.HTTPConnectionPool(
            str(address), target.port, timeout=timeout, retries=False, maxsize=1
        )
    with pool:
        response = pool.urlopen(
            "POST", target.path, body=body, headers=headers, redirect=False, assert_same_host=False
        )
        return response.status


def record(session: Session, results: list[tuple[_Send, Outcome]], *, now: dt.datetime) -> dict[str, int]:
    """Log every attempt; mark delivered, schedule the retry with backoff, or give up after a day."""
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    for item, result in results:
        delivery = session.get(WebhookDelivery, item.delivery_id)
        if delivery is None or delivery.status != "pending":
            continue  # cancelled meanwhile (the subscription deleted or its key revoked)
        session.add(
            WebhookAttempt(
                delivery_id=delivery.id,
                attempted_at=now,
                status_code=result.status_code,
                error=result.error,
                duration_ms=result.duration_ms,
            )
        )
        delivery.attempts += 1
        if result.error is None and result.status_code is not None:
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
