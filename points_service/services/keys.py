"""API keys: random secrets shown once; only their SHA-256 is stored, with a visible prefix."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from cachetools import TTLCache
from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session

from ..persistence import queries
from ..persistence.engine import Reader
from ..persistence.models import ROLES, ApiKey, Institution, Practitioner, WebhookSubscription
from . import webhooks
from .access import Principal
from .audit import record_audit
from .errors import NotAuthenticated, RuleViolation

KEY_PREFIX = "pts_"


def hash_key(secret: str) -> str:
    # a fast hash suits high-entropy random keys (and keeps every request cheap)
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CreateKey:
    role: str
    name: str
    institution_code: str | None = None
    practitioner_code: str | None = None
    expires_at: dt.datetime | None = None


def create_key(session: Session, cmd: CreateKey, *, now: dt.datetime) -> tuple[ApiKey, str]:
    """Returns the stored key and the secret, which is never stored and cannot be shown again."""
    if cmd.role not in ROLES:
        raise RuleViolation(
            f"role must be one of {', '.join(ROLES)}",
            rule="docs/api.md Authentication and roles",
            field="role",
        )
    institution_id = practitioner_id = None
    if cmd.role == "hr_system":
        if not cmd.institution_code:
            raise RuleViolation(
                "an hr_system key is bound to one institution",
                rule="docs/api.md Authentication and roles",
                field="institution",
            )
        institution = queries.institution_by_code(session, cmd.institution_code)
        if institution is None:
            raise RuleViolation(
                f"no institution {cmd.institution_code}",
                rule="docs/api.md Authentication and roles",
                field="institution",
            )
        institution_id = institution.id
    if cmd.role == "practitioner":
        if not cmd.practitioner_code:
            raise RuleViolation(
                "a practitioner key is bound to one person",
                rule="docs/api.md Authentication and roles",
                field="practitioner",
            )
        practitioner = queries.practitioner_by_code(session, cmd.practitioner_code)
        if practitioner is None:
            raise RuleViolation(
                f"no practitioner {cmd.practitioner_code}",
                rule="docs/api.md Authentication and roles",
                field="practitioner",
            )
        practitioner_id = practitioner.id
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        prefix=secret[: len(KEY_PREFIX) + 8],
        key_hash=hash_key(secret),
        role=cmd.role,
        institution_id=institution_id,
        practitioner_id=practitioner_id,
        name=cmd.name,
        created_at=now,
        expires_at=cmd.expires_at,
    )
    session.add(key)
    session.flush()
    record_audit(
        session,
        None,
        action="api_key.created",
        object_type="api_key",
        object_id=key.id,
        detail={"prefix": key.prefix, "role": cmd.role, "name": cmd.name},
        now=now,
    )
    return key, secret


class PrincipalCache:
    """Valid principals by the hash of their key, kept for a few seconds.

    The key check was a query with two joins on every request; with this cache a key is read once
    per `seconds` per process. The price is a bound on staleness: a key revoked by another process
    (`points-service keys revoke`) is refused by this one within `seconds`; revoked in this process,
    at once. Expiry is checked on every request against the cached `expires_at`. Only valid keys
    are kept: an unknown key is looked up every time (and limited per address, api.security).
    """

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self.configure(seconds)

    def configure(self, seconds: float, *, timer: Callable[[], float] = time.monotonic) -> None:
        with self._lock:
            self._by_hash: TTLCache[str, Principal] | None = (
                TTLCache(maxsize=100_000, ttl=seconds, timer=timer) if seconds > 0 else None
            )

    def get(self, key_hash: str) -> Principal | None:
        if self._by_hash is None:
            return None
        with self._lock:
            return self._by_hash.get(key_hash)

    def put(self, key_hash: str, principal: Principal) -> None:
        if self._by_hash is not None:
            with self._lock:
                self._by_hash[key_hash] = principal

    def forget(self, key_id: int) -> None:
        """A key changed in this process (revoked, rotated): read it again at its next use."""
        if self._by_hash is not None:
            with self._lock:
                for key_hash in [h for h, p in self._by_hash.items() if p.key_id == key_id]:
                    del self._by_hash[key_hash]


# one per process; create_app sets its bound from POINTS_KEY_CACHE_SECONDS
PRINCIPALS = PrincipalCache(seconds=5)


def authenticate(reader: Reader, secret: str, *, now: dt.datetime) -> Principal:
    """The principal behind a bearer key; 401 for unknown, revoked or expired keys (PRINCIPALS
    keeps valid ones for a few seconds)."""
    key_hash = hash_key(secret)
    cached = PRINCIPALS.get(key_hash)
    if cached is not None and (cached.expires_at is None or cached.expires_at > now):
        return cached
    principal = principal_of(queries.principal_by_hash(reader, key_hash), now=now)
    PRINCIPALS.put(key_hash, principal)
    return principal


def principal_for_key(session: Session, key_id: int, *, now: dt.datetime) -> Principal:
    """The principal behind a key id, read afresh (no cache): the console keeps a signed-in key's
    id in its session, never the secret, and asks on every request whether the key still holds,
    so a revoked or expired key's session ends at its next request."""
    return principal_of(queries.principal_by_id(session, key_id), now=now)


def principal_of(row: Row | None, *, now: dt.datetime) -> Principal:
    """The principal a key row names (queries.principal_by_hash, principal_by_id); NotAuthenticated
    when the key is unknown, revoked or expired."""
    if row is None:
        raise NotAuthenticated("unknown API key")
    if row.revoked_at is not None:
        raise NotAuthenticated("this API key has been revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise NotAuthenticated("this API key has expired")
    return Principal(
        key_id=row.id,
        name=row.name,
        role=row.role,
        institution_id=row.institution_id,
        institution_code=row.institution_code,
        practitioner_id=row.practitioner_id,
        practitioner_code=row.practitioner_code,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
    )


def has_admin_key(session: Session) -> bool:
    return (
        session.scalar(select(ApiKey.id).where(ApiKey.role == "admin", ApiKey.revoked_at.is_(None)).limit(1))
        is not None
    )


LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def touch(session: Session, secret: str | None, principal: Principal, *, now: dt.datetime) -> None:
    """Record that a key was used, at most once a minute (a write per request would be waste).
    `secret`: the key as presented, whose cached principal is refreshed; None from the console,
    which holds only the key's id and reads the key afresh on every request."""
    key = session.get(ApiKey, principal.key_id)
    if key is not None and (key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION):
        key.last_used_at = now
    if secret is not None:
        # the cached principal learns it too, or it would ask for another write at every request
        PRINCIPALS.put(hash_key(secret), replace(principal, last_used_at=now))


def find_key(session: Session, ref: str) -> ApiKey:
    """A key by its id or its visible prefix (`pts_abcd1234`)."""
    query = (
        select(ApiKey).where(ApiKey.id == int(ref))
        if ref.isdigit()
        else select(ApiKey).where(ApiKey.prefix == ref)
    )
    key = session.scalars(query).one_or_none()
    if key is None:
        raise RuleViolation(f"no API key {ref}", rule="docs/api.md Authentication and roles", field="key")
    return key


def list_keys(session: Session) -> list[tuple[ApiKey, str | None, str | None]]:
    rows = session.execute(
        select(ApiKey, Institution.code, Practitioner.code)
        .outerjoin(Institution, Institution.id == ApiKey.institution_id)
        .outerjoin(Practitioner, Practitioner.id == ApiKey.practitioner_id)
        .order_by(ApiKey.id)
    ).all()
    return [(k, i, p) for k, i, p in rows]


def revoke_key(session: Session, ref: str, *, now: dt.datetime) -> ApiKey:
    """Revoke a key; the webhook subscriptions it created stop at once (webhooks.disable_for_key)."""
    key = find_key(session, ref)
    if key.revoked_at is None:
        key.revoked_at = now
        PRINCIPALS.forget(key.id)
        disabled = webhooks.disable_for_key(session, key.id, reason="key_revoked", now=now)
        record_audit(
            session,
            None,
            action="api_key.revoked",
            object_type="api_key",
            object_id=key.id,
            detail={"prefix": key.prefix, "webhooks_disabled": disabled},
            now=now,
        )
    return key


def rotate_key(session: Session, ref: str, *, grace: dt.timedelta, now: dt.datetime) -> tuple[ApiKey, str]:
    """A new key with the same role and scope; the old one keeps working for `grace`, then expires."""
    old = find_key(session, ref)
    if old.revoked_at is not None:
        raise RuleViolation(
            "a revoked key cannot be rotated; create a new one",
            rule="docs/api.md Authentication and roles",
            field="key",
        )
    institution = session.get(Institution, old.institution_id) if old.institution_id else None
    practitioner = session.get(Practitioner, old.practitioner_id) if old.practitioner_id else None
    new, secret = create_key(
        session,
        CreateKey(
            role=old.role,
            name=old.name,
            institution_code=institution.code if institution else None,
            practitioner_code=practitioner.code if practitioner else None,
            expires_at=old.expires_at,
        ),
        now=now,
    )
    ends = now + grace
    if old.expires_at is None or old.expires_at > ends:
        old.expires_at = ends
        PRINCIPALS.forget(old.id)
    # the subscriptions go on under the new key: the old one's expiry would otherwise stop them
    session.execute(
        update(WebhookSubscription)
        .where(WebhookSubscription.owner_key_id == old.id, WebhookSubscription.deleted_at.is_(None))
        .values(owner_key_id=new.id)
        .execution_options(synchronize_session=False)
    )
    record_audit(
        session,
        None,
        action="api_key.rotated",
        object_type="api_key",
        object_id=old.id,
        detail={"prefix": old.prefix, "replaced_by": new.prefix, "expires_at": ends.isoformat()},
        now=now,
    )
    return new, secret
