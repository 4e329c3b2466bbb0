"""National ID validation, masking, encryption and blind indexing."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidTag

from points_service.persistence.pii import (
    InvalidNationalId,
    PiiKeys,
    blind_index,
    blob_key_id,
    decrypt_national_id,
    encrypt_national_id,
    generate_key,
    mask_national_id,
    normalise_national_id,
    reencrypt,
)
from points_service.rules.identifiers import with_check_character

KNOWN_VALID = "11010519491231002X"  # the worked example from GB 11643-1999
PRACTITIONER = b"YS130100000001"


def check_char(first17: str) -> str:
    """Independent re-statement of ISO 7064 MOD 11-2 so tests do not trust the code under test."""
    total = sum(int(d) * (2 ** (17 - i) % 11) for i, d in enumerate(first17))
    return "10X98765432"[total % 11]


def make_id(region: str = "130102", birth: str = "19800101", sequence: str = "123") -> str:
    first17 = region + birth + sequence
    return first17 + check_char(first17)


def wrong_check_char(number: str) -> str:
    return next(c for c in "0123456789X" if c != number[17])


def raw_key(byte: int) -> bytes:
    return bytes([byte]) * 32


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def keys_with(*key_ids: str, index_byte: int = 0xEE) -> PiiKeys:
    """Keys where the first id is active; key bytes derive from position so they are stable."""
    return PiiKeys(
        encryption_keys={key_id: raw_key(n + 1) for n, key_id in enumerate(key_ids)},
        active_key_id=key_ids[0],
        index_key=raw_key(index_byte),
    )


@pytest.fixture
def keys() -> PiiKeys:
    return keys_with("k1")


# --- validation ---------------------------------------------------------------------------


def test_the_standard_worked_example_is_accepted() -> None:
    assert normalise_national_id(KNOWN_VALID) == KNOWN_VALID


@pytest.mark.parametrize(
    ("region", "birth", "sequence"),
    [
        ("130102", "19800101", "123"),
        ("440305", "20000229", "457"),  # leap day
        ("310101", "19991231", "001"),
        ("650102", "19491001", "998"),
    ],
)
def test_numbers_with_a_correct_check_digit_are_accepted(region: str, birth: str, sequence: str) -> None:
    number = make_id(region, birth, sequence)
    assert normalise_national_id(number) == number


def test_every_check_character_including_x_is_reachable_and_accepted() -> None:
    seen = set()
    for seq in range(200):
        number = make_id(sequence=f"{seq:03d}")
        assert normalise_national_id(number) == number
        seen.add(number[17])
    assert seen == set("0123456789X")


def test_with_check_character_completes_the_standards_worked_example_and_every_number() -> None:
    assert with_check_character(KNOWN_VALID[:17]) == KNOWN_VALID
    for seq in range(200):
        first17 = f"13010219800101{seq:03d}"
        assert with_check_character(first17) == first17 + check_char(first17)


def test_surrounding_whitespace_is_stripped_and_a_lowercase_x_is_uppercased() -> None:
    assert normalise_national_id(f"  {KNOWN_VALID.lower()}\n") == KNOWN_VALID


def test_a_wrong_check_digit_is_refused() -> None:
    number = make_id()
    tampered = number[:17] + wrong_check_char(number)
    with pytest.raises(InvalidNationalId, match="check digit"):
        normalise_national_id(tampered)


def test_a_single_mistyped_digit_is_caught_by_the_check_digit() -> None:
    number = make_id()
    mistyped = number[:16] + str((int(number[16]) + 1) % 10) + number[17]
    with pytest.raises(InvalidNationalId, match="check digit"):
        normalise_national_id(mistyped)


@pytest.mark.parametrize("birth", ["19800230", "19810229", "19801301", "19800000", "19800132"])
def test_an_impossible_birth_date_is_refused(birth: str) -> None:
    with pytest.raises(InvalidNationalId, match="birth date"):
        normalise_national_id(make_id(birth=birth))


@pytest.mark.parametrize("length", [0, 15, 17, 19])
def test_a_number_of_the_wrong_length_is_refused(length: int) -> None:
    with pytest.raises(InvalidNationalId, match="18 characters"):
        normalise_national_id((KNOWN_VALID * 2)[:length])


@pytest.mark.parametrize(
    "bad",
    [
        "1101051949123100XX",  # X before the last position
        "11010519491231002Y",
        "1101O519491231002X",  # letter O for zero
        "１１０１０５19491231002X",  # full-width digits
        "110105 9491231002X",  # internal space
    ],
)
def test_non_digit_characters_are_refused(bad: str) -> None:
    with pytest.raises(InvalidNationalId, match="digit"):
        normalise_national_id(bad)


def test_error_messages_never_contain_the_number() -> None:
    number = make_id()
    candidates = [number[:17] + wrong_check_char(number), make_id(birth="19800230"), number + "0"]
    for candidate in candidates:
        with pytest.raises(InvalidNationalId) as excinfo:
            normalise_national_id(candidate)
        assert candidate[:14] not in str(excinfo.value)


# --- masking ------------------------------------------------------------------------------


def test_masking_keeps_only_the_first_and_the_last_character() -> None:
    number = make_id(region="130101", birth="19900101", sequence="123")
    masked = mask_national_id(number)
    assert masked == f"1{'*' * 16}{number[-1]}"
    assert len(masked) == 18


def test_masking_the_worked_example_gives_the_documented_shape() -> None:
    assert mask_national_id(KNOWN_VALID) == "1****************X"


def test_masking_refuses_a_value_that_is_not_eighteen_characters() -> None:
    with pytest.raises(InvalidNationalId):
        mask_national_id("123456789")


# --- encryption ---------------------------------------------------------------------------


def test_an_encrypted_number_decrypts_to_the_original(keys: PiiKeys) -> None:
    blob = encrypt_national_id(keys, KNOWN_VALID, associated_data=PRACTITIONER)
    assert KNOWN_VALID.encode() not in blob
    assert blob_key_id(blob) == "k1"
    assert decrypt_national_id(keys, blob, associated_data=PRACTITIONER) == KNOWN_VALID


def test_encrypting_the_same_number_twice_gives_different_ciphertexts(keys: PiiKeys) -> None:
    first = encrypt_national_id(keys, KNOWN_VALID, associated_data=PRACTITIONER)
    second = encrypt_national_id(keys, KNOWN_VALID, associated_data=PRACTITIONER)
    assert first != second


def test_tampered_ciphertext_fails_to_decrypt(keys: PiiKeys) -> None:
    blob = bytearray(encrypt_national_id(keys, KNOWN_VALID, associated_data=PRACTITIONER))
    blob[-1] ^= 0x01
    with pytest.raises(InvalidTag):
        decrypt_national_id(keys, bytes(blob), associated_data=PRACTITIONER)


def test_a_blob_moved_to_another_practitioner_fails_to_decrypt(keys: PiiKeys) -> None:
    blob = encrypt_national_id(keys, KNOWN_VALID, associated_data=PRACTITIONER)
    with pytest.raises(InvalidTag):
        decrypt_national_id(keys, blob, associated_data=b"YS130100000002")


def test_a_rewritten_key_id_is_detected_as_tampering() -> None:
    # Both keys identical so only the authenticated header can reveal the change.
    keys = PiiKeys(
        encryption_keys={"k1": raw_key(1), "k2": raw_key(1)}, active_key_id="k1", index_key=raw_key(0xEE)
    )
    blob = encrypt_national_id(keys, KNOWN_VALID, associated_data=PRACTITIONER)
    rewritten = blob[:1] + b"k2" + blob[3:]
    with pytest.raises(InvalidTag):
        decrypt_national_id(keys, rewritten, associated_data=PRACTITIONER)


@pytest.mark.parametrize("blob", [b"", b"\x00", b"\x02k1", b"\x02k1" + bytes(20)])
def test_a_malformed_blob_is_refused_with_a_value_error(keys: PiiKeys, blob: bytes) -> None:
    with pytest.raises(ValueError, match="malformed|empty"):
        decrypt_national_id(keys, blob, associated_data=PRACTITIONER)


def test_a_blob_under_an_unknown_key_id_is_refused() -> None:
    blob = encrypt_national_id(keys_with("k9"), KNOWN_VALID, associated_data=PRACTITIONER)
    with pytest.raises(ValueError, match="unknown key id 'k9'"):
        decrypt_national_id(keys_with("k1"), blob, associated_data=PRACTITIONER)


def test_a_non_normalised_number_cannot_be_encrypted(keys: PiiKeys) -> None:
    with pytest.raises(InvalidNationalId, match="normalised"):
        encrypt_national_id(keys, KNOWN_VALID.lower(), associated_data=PRACTITIONER)


# --- rotation -----------------------------------------------------------------------------


def test_a_blob_made_with_the_old_key_still_decrypts_after_rotation() -> None:
    before = keys_with("k1")
    old_blob = encrypt_national_id(before, KNOWN_VALID, associated_data=PRACTITIONER)
    after = PiiKeys(
        encryption_keys={"k2": raw_key(2), "k1": raw_key(1)},
        active_key_id="k2",
        index_key=before.index_key,
    )
    assert decrypt_national_id(after, old_blob, associated_data=PRACTITIONER) == KNOWN_VALID
    new_blob = encrypt_national_id(after, KNOWN_VALID, associated_data=PRACTITIONER)
    assert blob_key_id(new_blob) == "k2"


def test_reencrypt_moves_a_blob_to_the_active_key() -> None:
    old_keys = keys_with("k1")
    rotated = PiiKeys.from_settings(f"k2:{b64(raw_key(2))},k1:{b64(raw_key(1))}", b64(raw_key(0xEE)))
    old_blob = encrypt_national_id(old_keys, KNOWN_VALID, associated_data=PRACTITIONER)

    moved = reencrypt(rotated, old_blob, associated_data=PRACTITIONER)

    assert blob_key_id(old_blob) == "k1"
    assert blob_key_id(moved) == "k2"
    assert decrypt_national_id(rotated, moved, associated_data=PRACTITIONER) == KNOWN_VALID
    k2_only = PiiKeys(encryption_keys={"k2": raw_key(2)}, active_key_id="k2", index_key=raw_key(0xEE))
    assert decrypt_national_id(k2_only, moved, associated_data=PRACTITIONER) == KNOWN_VALID


def test_reencrypt_checks_the_associated_data(keys: PiiKeys) -> None:
    blob = encrypt_national_id(keys, KNOWN_VALID, associated_data=PRACTITIONER)
    with pytest.raises(InvalidTag):
        reencrypt(keys, blob, associated_data=b"someone-else")


# --- blind index --------------------------------------------------------------------------


def test_the_blind_index_is_deterministic_hex_sha256(keys: PiiKeys) -> None:
    index = blind_index(keys, KNOWN_VALID)
    assert index == blind_index(keys, KNOWN_VALID)
    assert len(index) == 64
    assert int(index, 16) >= 0


def test_the_blind_index_differs_between_numbers(keys: PiiKeys) -> None:
    assert blind_index(keys, KNOWN_VALID) != blind_index(keys, make_id())


def test_the_blind_index_differs_under_a_different_index_key() -> None:
    assert blind_index(keys_with("k1", index_byte=0xEE), KNOWN_VALID) != blind_index(
        keys_with("k1", index_byte=0xDD), KNOWN_VALID
    )


def test_the_blind_index_does_not_depend_on_the_encryption_keys() -> None:
    assert blind_index(keys_with("k1"), KNOWN_VALID) == blind_index(keys_with("k7", "k8"), KNOWN_VALID)


# --- settings -----------------------------------------------------------------------------


def test_settings_are_parsed_with_the_first_key_active() -> None:
    keys = PiiKeys.from_settings(f" k2:{b64(raw_key(2))} , k1:{b64(raw_key(1))}", b64(raw_key(0xEE)))
    assert keys.active_key_id == "k2"
    assert dict(keys.encryption_keys) == {"k2": raw_key(2), "k1": raw_key(1)}
    assert keys.index_key == raw_key(0xEE)


def test_generated_keys_are_accepted_by_the_settings_parser() -> None:
    first, second, index = generate_key(), generate_key(), generate_key()
    assert len({first, second, index}) == 3
    keys = PiiKeys.from_settings(f"a:{first},b:{second}", index)
    assert keys.encryption_keys["a"] == base64.b64decode(first)


def test_configured_keys_cannot_be_modified_after_construction(keys: PiiKeys) -> None:
    with pytest.raises(TypeError):
        keys.encryption_keys["evil"] = raw_key(9)  # type: ignore[index]


@pytest.mark.parametrize(
    ("encryption_keys", "index_key", "message"),
    [
        ("", b64(raw_key(0xEE)), "empty"),
        (b64(raw_key(1)), b64(raw_key(0xEE)), "key_id:<base64>"),
        (f":{b64(raw_key(1))}", b64(raw_key(0xEE)), "key_id:<base64>"),
        ("k1:", b64(raw_key(0xEE)), "key_id:<base64>"),
        (f"k1:{b64(raw_key(1))},", b64(raw_key(0xEE)), "entry #2"),
        ("k1:not base64!", b64(raw_key(0xEE)), "not valid base64"),
        (f"k1:{b64(bytes(16))}", b64(raw_key(0xEE)), "32 bytes, got 16"),
        (f"k1:{b64(raw_key(1))},k1:{b64(raw_key(2))}", b64(raw_key(0xEE)), "more than once"),
        (f"k 1:{b64(raw_key(1))}", b64(raw_key(0xEE)), "key id"),
        (f"k1:{b64(raw_key(1))}", b64(bytes(31)), "index key must decode to 32 bytes"),
        (f"k1:{b64(raw_key(1))}", "%%%", "index key is not valid base64"),
        (f"k1:{b64(raw_key(1))}", b64(raw_key(1)), "differ"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(
    encryption_keys: str, index_key: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as excinfo:
        PiiKeys.from_settings(encryption_keys, index_key)
    assert b64(raw_key(1)) not in str(excinfo.value)


def test_an_active_key_id_that_is_not_configured_is_refused() -> None:
    with pytest.raises(ValueError, match="not among"):
        PiiKeys(encryption_keys={"k1": raw_key(1)}, active_key_id="k2", index_key=raw_key(0xEE))
