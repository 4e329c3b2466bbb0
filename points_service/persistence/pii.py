"""Protection of practitioners' national ID numbers (居民身份证号码, GB 11643-1999).

The number is personal data, so it is stored only as AES-GCM ciphertext plus a keyed
blind index for equality look-ups; anything shown to people is the masked form.

Ciphertext layout: ``len(key_id) (1 byte) | key_id (ASCII) | nonce (12 bytes) | ciphertext+tag``.
Carrying the key id in every blob lets old rows stay readable after the active key is
rotated, and lets a background job find rows still under a retired key.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..rules.identifiers import gb11643_check_character

__all__ = [
    "InvalidKeySetting",
    "InvalidNationalId",
    "PiiKeys",
    "blind_index",
    "blind_indexes",
    "blob_key_id",
    "decrypt_national_id",
    "encrypt_national_id",
    "generate_key",
    "index_key_fingerprint",
    "mask_national_id",
    "normalise_national_id",
    "reencrypt",
]

NATIONAL_ID_LENGTH = 18
KEY_BYTES = 32
NONCE_BYTES = 12
_TAG_BYTES = 16

_ASCII_DIGITS = frozenset("0123456789")

# the settings an InvalidKeySetting can name
_ENCRYPTION, _INDEX, _PREVIOUS = "encryption_keys", "index_key", "index_key_previous"

# Key ids are written into every ciphertext and into settings strings, so they must be
# short and free of the ":" / "," separators used by ``PiiKeys.from_settings``.
_KEY_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class InvalidKeySetting(ValueError):
    """A key setting that cannot be used. `setting` names which one: "encryption_keys", "index_key"
    or "index_key_previous", so that the caller can name the variable it came from. Messages
    never contain key material."""

    def __init__(self, setting: str, message: str):
        super().__init__(message)
        self.setting = setting


class InvalidNationalId(ValueError):
    """The value is not a well-formed 18-character national ID number.

    Messages name the failed check only; the number itself must never reach logs or
    API error bodies.
    """


def normalise_national_id(raw: str) -> str:
    """Return the canonical form (surrounding whitespace removed, upper-case ``X``) or raise.

    Internal whitespace is refused rather than squeezed out: a number typed with gaps is
    more likely mangled than merely formatted.
    """
    value = raw.strip().upper()
    if len(value) != NATIONAL_ID_LENGTH:
        raise InvalidNationalId(f"national ID must be {NATIONAL_ID_LENGTH} characters long, got {len(value)}")
    # str.isdigit() would accept non-ASCII digits (e.g. full-width ０), which would then
    # produce a different blind index from the ASCII spelling of the same number.
    if not set(value[:17]) <= _ASCII_DIGITS:
        raise InvalidNationalId("national ID: the first 17 characters must be digits 0-9")
    if value[17] not in _ASCII_DIGITS and value[17] != "X":
        raise InvalidNationalId("national ID: the last character must be a digit 0-9 or X")
    try:
        dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise InvalidNationalId(
            "national ID: characters 7-14 are not a valid birth date (YYYYMMDD)"
        ) from None
    if gb11643_check_character(value[:17]) != value[17]:
        raise InvalidNationalId("national ID: check digit does not match (GB 11643 MOD 11-2)")
    return value


def mask_national_id(normalised: str) -> str:
    """Display form keeping only the first and the last character, e.g. ``1****************X``.

    More would narrow the number down: the first six digits name a county and the next eight a
    birth date, so a mask of 4 + 4 left a few thousand candidates to try against the check digit.
    """
    if len(normalised) != NATIONAL_ID_LENGTH:
        # Masking a malformed value could leak most of it (e.g. a 9-char string keeps 8).
        raise InvalidNationalId("only a normalised 18-character national ID can be masked")
    return f"{normalised[0]}{'*' * (NATIONAL_ID_LENGTH - 2)}{normalised[-1]}"


@dataclass(frozen=True)
class PiiKeys:
    """Key material for national ID protection.

    ``encryption_keys`` maps key id to a 32-byte AES-256 key; every listed key can decrypt,
    only ``active_key_id`` encrypts. ``index_key`` is a separate HMAC key so that the
    blind index cannot be reversed with an encryption key and vice versa.
    ``previous_index_key`` is set only while the index moves to a new key: until every stored
    index is rebuilt, a number may be indexed under either key, so look-ups try both.
    """

    encryption_keys: Mapping[str, bytes]
    active_key_id: str
    index_key: bytes
    previous_index_key: bytes | None = None

    def __post_init__(self) -> None:
        if not self.encryption_keys:
            raise InvalidKeySetting(_ENCRYPTION, "at least one PII encryption key is required")
        for key_id, key in self.encryption_keys.items():
            if not _KEY_ID_RE.fullmatch(key_id):
                raise InvalidKeySetting(
                    _ENCRYPTION,
                    f"PII key id {key_id!r} must be 1-64 characters of letters, digits, '_', '.', '-'",
                )
            if len(key) != KEY_BYTES:
                raise InvalidKeySetting(
                    _ENCRYPTION, f"PII encryption key {key_id!r} must be {KEY_BYTES} bytes, got {len(key)}"
                )
        if self.active_key_id not in self.encryption_keys:
            raise InvalidKeySetting(
                _ENCRYPTION, f"active PII key id {self.active_key_id!r} is not among the configured keys"
            )
        for setting, index_key in ((_INDEX, self.index_key), (_PREVIOUS, self.previous_index_key)):
            if index_key is None:
                continue
            if len(index_key) != KEY_BYTES:
                raise InvalidKeySetting(
                    setting, f"PII index key must be {KEY_BYTES} bytes, got {len(index_key)}"
                )
            if any(hmac.compare_digest(index_key, other) for other in self.encryption_keys.values()):
                raise InvalidKeySetting(setting, "PII index key must differ from every encryption key")
        previous = self.previous_index_key
        if previous is not None and hmac.compare_digest(self.index_key, previous):
            raise InvalidKeySetting(_PREVIOUS, "the previous PII index key is the current one")
        # Read-only view so a shared PiiKeys cannot be altered behind its users' backs.
        object.__setattr__(self, "encryption_keys", MappingProxyType(dict(self.encryption_keys)))

    @classmethod
    def from_settings(
        cls, encryption_keys: str, index_key: str, previous_index_key: str | None = None
    ) -> PiiKeys:
        """Parse ``"k2:<base64>,k1:<base64>"`` (first entry is active) and base64 index keys.

        Error messages name the offending key id or position, never the key material.
        """
        keys: dict[str, bytes] = {}
        entries = [entry.strip() for entry in encryption_keys.split(",")]
        if not any(entries):
            raise InvalidKeySetting(
                _ENCRYPTION, "PII encryption keys setting is empty; expected 'key_id:<base64>,...'"
            )
        for position, entry in enumerate(entries, start=1):
            key_id, sep, encoded = entry.partition(":")
            key_id = key_id.strip()
            if not sep or not key_id or not encoded.strip():
                raise InvalidKeySetting(
                    _ENCRYPTION, f"PII encryption key entry #{position} must look like 'key_id:<base64>'"
                )
            if key_id in keys:
                raise InvalidKeySetting(
                    _ENCRYPTION, f"PII encryption key id {key_id!r} is listed more than once"
                )
            keys[key_id] = _decode_key(encoded, what=f"PII encryption key {key_id!r}", setting=_ENCRYPTION)
        return cls(
            encryption_keys=keys,
            active_key_id=next(iter(keys)),
            index_key=_decode_key(index_key, what="PII index key", setting=_INDEX),
            previous_index_key=None
            if previous_index_key is None
            else _decode_key(previous_index_key, what="previous PII index key", setting=_PREVIOUS),
        )


def _decode_key(encoded: str, *, what: str, setting: str) -> bytes:
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raise InvalidKeySetting(setting, f"{what} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise InvalidKeySetting(setting, f"{what} must decode to {KEY_BYTES} bytes, got {len(key)}")
    return key


def index_key_fingerprint(key: bytes) -> str:
    """What the database records of the index key: a keyed digest of a fixed text, so it tells
    keys apart without revealing anything about the key."""
    return hmac.new(key, b"points_service national ID index key", hashlib.sha256).hexdigest()


def generate_key() -> str:
    """A fresh random 32-byte key, base64-encoded, suitable for either setting."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def _require_normalised(value: str) -> None:
    # Storing a non-canonical spelling would give it a different blind index, letting the
    # same person be registered twice; cheap enough to re-check on every write.
    if normalise_national_id(value) != value:
        raise InvalidNationalId("national ID must be normalised before it is encrypted or indexed")


def _header(key_id: str) -> bytes:
    encoded = key_id.encode("ascii")
    return bytes([len(encoded)]) + encoded


def _split_blob(blob: bytes) -> tuple[str, bytes, bytes, bytes]:
    """Return (key_id, header, nonce, ciphertext) or raise ValueError for a malformed blob."""
    if not blob:
        raise ValueError("encrypted national ID is empty")
    key_id_len = blob[0]
    header_len = 1 + key_id_len
    if key_id_len == 0 or len(blob) < header_len + NONCE_BYTES + _TAG_BYTES:
        raise ValueError("encrypted national ID is truncated or malformed")
    try:
        key_id = blob[1:header_len].decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("encrypted national ID has a malformed key id") from None
    nonce = blob[header_len : header_len + NONCE_BYTES]
    return key_id, blob[:header_len], nonce, blob[header_len + NONCE_BYTES :]


def blob_key_id(blob: bytes) -> str:
    """Key id a blob was encrypted under, so rotation jobs can skip rows already current."""
    return _split_blob(blob)[0]


def seal(keys: PiiKeys, plaintext: bytes, *, associated_data: bytes) -> bytes:
    """AES-GCM under the active key: key-id header + nonce + ciphertext (for any secret we keep)."""
    header = _header(keys.active_key_id)
    nonce = os.urandom(NONCE_BYTES)
    # The header is authenticated too, so a rewritten key id is detected as tampering.
    ciphertext = AESGCM(keys.encryption_keys[keys.active_key_id]).encrypt(
        nonce, plaintext, header + associated_data
    )
    return header + nonce + ciphertext


def unseal(keys: PiiKeys, blob: bytes, *, associated_data: bytes) -> bytes:
    """Open a blob made by `seal` under any configured key.

    Raises ``cryptography.exceptions.InvalidTag`` when the blob was tampered with or the
    associated data differs, and ``ValueError`` for malformed blobs or unknown key ids.
    """
    key_id, header, nonce, ciphertext = _split_blob(blob)
    key = keys.encryption_keys.get(key_id)
    if key is None:
        raise ValueError(f"encrypted value uses unknown key id {key_id!r}; was a key retired too early?")
    return AESGCM(key).decrypt(nonce, ciphertext, header + associated_data)


def encrypt_national_id(keys: PiiKeys, normalised: str, *, associated_data: bytes) -> bytes:
    """Encrypt under the active key.

    ``associated_data`` (the practitioner code) binds the ciphertext to its row, so a blob
    copied onto another practitioner fails to decrypt instead of silently moving identity.
    """
    _require_normalised(normalised)
    return seal(keys, normalised.encode("ascii"), associated_data=associated_data)


def decrypt_national_id(keys: PiiKeys, blob: bytes, *, associated_data: bytes) -> str:
    """Decrypt a national ID made under any configured key (see `unseal` for the errors)."""
    return unseal(keys, blob, associated_data=associated_data).decode("ascii")


def reencrypt(keys: PiiKeys, blob: bytes, *, associated_data: bytes) -> bytes:
    """Re-encrypt a blob under the active key (with a fresh nonce), for key rotation."""
    plaintext = decrypt_national_id(keys, blob, associated_data=associated_data)
    return encrypt_national_id(keys, plaintext, associated_data=associated_data)


def blind_index(keys: PiiKeys, normalised: str) -> str:
    """Deterministic keyed digest (hex HMAC-SHA256) for uniqueness checks and look-ups.

    Keyed rather than a plain hash because the ID space (region x birth date x sequence)
    is small enough to brute-force an unkeyed SHA-256 offline.
    """
    _require_normalised(normalised)
    return hmac.new(keys.index_key, normalised.encode("ascii"), hashlib.sha256).hexdigest()


def blind_indexes(keys: PiiKeys, normalised: str) -> tuple[str, ...]:
    """Every index the number may be stored under: the current key's, then, while the index key
    is being rotated, the previous key's. Writes use the first; look-ups must try all."""
    current = blind_index(keys, normalised)
    if keys.previous_index_key is None:
        return (current,)
    previous = hmac.new(keys.previous_index_key, normalised.encode("ascii"), hashlib.sha256).hexdigest()
    return (current, previous)
