"""Key rotation for stored personal data: re-encrypting under the active POINTS_ENCRYPTION_KEYS
key, rebuilding the national-ID blind index under a new POINTS_INDEX_KEY, and the recorded
fingerprint of the index key that every start-up checks.

The blind index finds a national ID that is already registered. Indexes made with one key are
invisible to look-ups with another, so a changed POINTS_INDEX_KEY would silently let the same
person be registered twice. The database therefore records which key built its index; a start
with another key is refused unless the old key is given as POINTS_INDEX_KEY_PREVIOUS, in which
case look-ups try both until `pii rotate` has rebuilt every index and recorded the new key.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..persistence.engine import transaction
from ..persistence.models import Practitioner, ServiceSetting, WebhookSubscription
from ..persistence.pii import (
    PiiKeys,
    blind_index,
    blind_indexes,
    blob_key_id,
    decrypt_national_id,
    encrypt_national_id,
    index_key_fingerprint,
    seal,
    unseal,
)

INDEX_KEY_SETTING = "pii.index_key_fingerprint"
# with no fingerprint recorded, this many of the oldest and of the newest people are checked
_SAMPLE = 10


class IndexKeyRefused(Exception):
    """The configured index key cannot be used with this database; the message says what to do."""


@dataclass(frozen=True)
class IndexKeyState:
    """Which key the stored indexes are under, as far as the configured keys tell."""

    recorded: str  # the fingerprint in the database
    rotating: bool  # the index is still (partly) under POINTS_INDEX_KEY_PREVIOUS

    def note(self, keys: PiiKeys) -> str | None:
        """One line for the operator when something is left to do, else None."""
        if self.rotating:
            return (
                "the national-ID index is still under POINTS_INDEX_KEY_PREVIOUS; look-ups try both keys "
                "until `points-service pii rotate` has rebuilt it under POINTS_INDEX_KEY"
            )
        if keys.previous_index_key is not None:
            return "the national-ID index is under POINTS_INDEX_KEY; POINTS_INDEX_KEY_PREVIOUS can be removed"
        return None


def check_index_key(sessions: sessionmaker[Session], keys: PiiKeys, *, now: dt.datetime) -> IndexKeyState:
    """Refuse an index key the stored indexes were not made with; record the key on first use.

    With no fingerprint recorded (a new database, or one from before fingerprints), a few stored
    people are looked up with the configured keys: their indexes must match, then the key is
    recorded. Raises IndexKeyRefused with a one-line explanation.
    """
    try:
        recorded = _recorded(sessions, keys, now=now)
    except IntegrityError:  # another process recorded it at the same moment: check against theirs
        recorded = _recorded(sessions, keys, now=now)
    if recorded == index_key_fingerprint(keys.index_key):
        return IndexKeyState(recorded, rotating=False)
    if keys.previous_index_key is not None and recorded == index_key_fingerprint(keys.previous_index_key):
        return IndexKeyState(recorded, rotating=True)
    raise IndexKeyRefused(_WRONG_INDEX_KEY)


_WRONG_INDEX_KEY = (
    "POINTS_INDEX_KEY is not the key this database's national-ID index was built with, so duplicate "
    "national IDs would go unnoticed: set that key back, or keep the new one, give the old one as "
    "POINTS_INDEX_KEY_PREVIOUS and run `points-service pii rotate`"
)


def _recorded(sessions: sessionmaker[Session], keys: PiiKeys, *, now: dt.datetime) -> str:
    with transaction(sessions, write=True) as session:
        row = session.get(ServiceSetting, INDEX_KEY_SETTING)
        if row is not None:
            return row.value
        recorded = _recognised_key(session, keys)
        session.add(ServiceSetting(name=INDEX_KEY_SETTING, value=recorded, updated_at=now))
    return recorded


def _recognised_key(session: Session, keys: PiiKeys) -> str:
    """The fingerprint of the configured key that made the oldest and newest stored indexes."""
    first = select(Practitioner).order_by(Practitioner.id).limit(_SAMPLE)
    last = select(Practitioner).order_by(Practitioner.id.desc()).limit(_SAMPLE)
    under_previous = False
    for person in {p.id: p for query in (first, last) for p in session.scalars(query)}.values():
        try:
            number = decrypt_national_id(
                keys, person.national_id_cipher, associated_data=person.code.encode("utf-8")
            )
        except Exception:  # an unknown key id or a failed tag: these are not the keys that wrote it
            raise IndexKeyRefused(
                "POINTS_ENCRYPTION_KEYS cannot decrypt the national IDs stored in this database: "
                "give every key that encrypted them, the active one first"
            ) from None
        indexes = blind_indexes(keys, number)
        if person.national_id_index not in indexes:
            raise IndexKeyRefused(_WRONG_INDEX_KEY)
        under_previous = under_previous or person.national_id_index != indexes[0]
    if under_previous:
        assert keys.previous_index_key is not None
        return index_key_fingerprint(keys.previous_index_key)
    return index_key_fingerprint(keys.index_key)


def rotate_encryption(
    sessions: sessionmaker[Session], keys: PiiKeys, *, now: dt.datetime, batch: int = 1000
) -> dict[str, int]:
    """Re-encrypt under the active key and, while the index key changes, rebuild every index.

    One transaction per batch, so a long rotation holds no lock for long and resumes where it
    stopped. The new index key's fingerprint is recorded only after the last batch.
    """
    counts = {"practitioners": 0, "webhooks": 0, "indexes": 0}
    fingerprint = index_key_fingerprint(keys.index_key)
    with transaction(sessions, write=False) as session:
        row = session.get(ServiceSetting, INDEX_KEY_SETTING)
        rebuild = row is None or row.value != fingerprint
    last = 0
    while True:
        with transaction(sessions, write=True) as session:
            rows = session.scalars(
                select(Practitioner).where(Practitioner.id > last).order_by(Practitioner.id).limit(batch)
            ).all()
            for practitioner in rows:
                stale_cipher = blob_key_id(practitioner.national_id_cipher) != keys.active_key_id
                if not (stale_cipher or rebuild):
                    continue
                aad = practitioner.code.encode("utf-8")
                number = decrypt_national_id(keys, practitioner.national_id_cipher, associated_data=aad)
                if stale_cipher:
                    practitioner.national_id_cipher = encrypt_national_id(keys, number, associated_data=aad)
                    counts["practitioners"] += 1
                index = blind_index(keys, number)
                if practitioner.national_id_index != index:
                    practitioner.national_id_index = index
                    counts["indexes"] += 1
        if not rows:
            break
        last = rows[-1].id
    with transaction(sessions, write=True) as session:
        for subscription in session.scalars(select(WebhookSubscription)):
            if blob_key_id(subscription.secret_cipher) != keys.active_key_id:
                aad = f"webhook:{subscription.id}".encode()
                subscription.secret_cipher = seal(
                    keys, unseal(keys, subscription.secret_cipher, associated_data=aad), associated_data=aad
                )
                counts["webhooks"] += 1
        if rebuild:
            # every index is now under the current key: from here on only it is accepted at start-up
            session.merge(ServiceSetting(name=INDEX_KEY_SETTING, value=fingerprint, updated_at=now))
    return counts
