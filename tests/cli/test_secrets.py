"""Secrets are enforced at start-up: no serving on the public development keys, malformed keys
refused, and an index key other than the one the stored national IDs are indexed with refused
until `pii rotate` has rebuilt the index under it."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from conftest import ENCRYPTION, KEY_A, KEY_B, answered
from factories import code, new_id_number
from sqlalchemy import select

from points_service.cli import serve as serve_command
from points_service.clock import utc_now
from points_service.persistence.engine import make_engine, make_sessionmaker, transaction
from points_service.persistence.models import Practitioner, ServiceSetting
from points_service.persistence.pii import PiiKeys, index_key_fingerprint
from points_service.persistence.schema import upgrade_database
from points_service.services.access import Principal
from points_service.services.errors import DuplicatePractitioner
from points_service.services.keys import CreateKey, create_key
from points_service.services.pii_rotation import INDEX_KEY_SETTING
from points_service.services.registry import CreatePractitioner, create_practitioner
from points_service.settings import DEV_ENCRYPTION_KEYS, DEV_INDEX_KEY, Settings, load_policy_set

POLICIES = load_policy_set()


@pytest.fixture
def execs(monkeypatch):
    """`serve` ends by exec'ing gunicorn: record the argv instead."""
    seen: list[list[str]] = []

    def execv(path, argv):
        seen.append(list(argv))
        raise SystemExit(0)

    monkeypatch.setattr(serve_command.os, "execv", execv)
    monkeypatch.setattr(serve_command, "_require_free_port", lambda *a, **k: None)
    return seen


def _env(url: str, *, index: str | None = KEY_A, previous: str | None = None, **more: str) -> dict[str, str]:
    env = {"POINTS_DATABASE_URL": url, "POINTS_ENCRYPTION_KEYS": ENCRYPTION, **more}
    if index is not None:
        env["POINTS_INDEX_KEY"] = index
    if previous is not None:
        env["POINTS_INDEX_KEY_PREVIOUS"] = previous
    return env


# -- the development keys --------------------------------------------------------------------------


def test_serve_refuses_the_development_keys_naming_both_variables(invoke, execs, fresh):
    result = invoke("serve", env={"POINTS_DATABASE_URL": fresh("dev", migrated=True)})
    answered(result, "POINTS_ENCRYPTION_KEYS and POINTS_INDEX_KEY", "POINTS_ALLOW_DEV_KEYS=1", most_lines=1)
    assert execs == []


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"POINTS_INDEX_KEY": KEY_A}, "POINTS_ENCRYPTION_KEYS"),
        ({"POINTS_ENCRYPTION_KEYS": ENCRYPTION}, "POINTS_INDEX_KEY"),
    ],
)
def test_serve_refuses_a_single_development_key_naming_it(invoke, execs, fresh, given, named):
    result = invoke("serve", env={"POINTS_DATABASE_URL": fresh("dev", migrated=True), **given})
    text = answered(result, named, most_lines=1)
    assert " and " not in text.split("keys:")[1].split("(")[0]
    assert execs == []


def test_serve_starts_on_the_development_keys_when_allowed_and_warns(invoke, execs, fresh):
    url = fresh("dev", migrated=True)
    result = invoke("serve", env={"POINTS_DATABASE_URL": url, "POINTS_ALLOW_DEV_KEYS": "1", "PORT": "8123"})
    assert result.exit_code == 0, result.output
    warning = "Warning: POINTS_ENCRYPTION_KEYS and POINTS_INDEX_KEY are the public development keys"
    assert warning in result.output
    (argv,) = execs
    assert argv[-1] == "points_service.wsgi:app" and "0.0.0.0:8123" in argv


def test_serve_with_its_own_keys_starts_without_a_warning(invoke, execs, fresh):
    result = invoke("serve", env=_env(fresh("own", migrated=True)))
    assert result.exit_code == 0, result.output
    assert result.output == "" and len(execs) == 1


def test_serve_accepts_development_keys_kept_only_to_decrypt(invoke, execs, fresh):
    """Moving off the development encryption key means keeping it after the new one for a while."""
    env = _env(fresh("own", migrated=True), POINTS_ENCRYPTION_KEYS=f"{ENCRYPTION},{DEV_ENCRYPTION_KEYS}")
    assert invoke("serve", env=env).exit_code == 0 and len(execs) == 1


def test_run_allows_the_development_keys_with_a_one_line_warning(invoke, tmp_path, monkeypatch):
    monkeypatch.setattr(serve_command, "_require_free_port", lambda *a, **k: None)
    monkeypatch.setattr(serve_command.subprocess, "Popen", _Exited)
    result = invoke("run", env={"POINTS_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}"})
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "development keys" in warnings[0]


class _Exited:
    returncode = 0

    def __init__(self, *_, **__):
        pass

    def poll(self):
        return 0

    def wait(self, timeout=None):
        return 0

    def terminate(self):
        pass


# -- the recorded index key --------------------------------------------------------------------------


def _keys(index: str, previous: str | None = None) -> PiiKeys:
    return PiiKeys.from_settings(ENCRYPTION, index, previous)


def _people(url: str, keys: PiiKeys, n: int) -> dict[str, str]:
    """n practitioners created as the API creates them: {code: national ID}."""
    engine = make_engine(url)
    people = {}
    try:
        with transaction(make_sessionmaker(engine), write=True) as session:
            key, _ = create_key(session, CreateKey(role="admin", name="seed"), now=utc_now())
            admin = Principal(key_id=key.id, name="seed", role="admin")
            for _ in range(n):
                c, number = code("P"), new_id_number()
                _create(session, admin, keys, c, number)
                people[c] = number
    finally:
        engine.dispose()
    return people


def _create(session, admin, keys, c, number):
    return create_practitioner(
        session,
        admin,
        CreatePractitioner(code=c, name=f"Person {c}", id_number=number, category="nurse"),
        keys=keys,
        policies=POLICIES,
        now=utc_now(),
        request_id=None,
    )


def _recorded(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            row = session.get(ServiceSetting, INDEX_KEY_SETTING)
            return row.value if row else None
    finally:
        engine.dispose()


def _stored_indexes(url: str) -> dict[str, str]:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            return dict(session.execute(select(Practitioner.code, Practitioner.national_id_index)).all())
    finally:
        engine.dispose()


def _hmac(key: str, number: str) -> str:
    import base64

    return hmac.new(base64.b64decode(key), number.encode(), hashlib.sha256).hexdigest()


def test_the_first_start_on_an_empty_database_records_its_index_key(invoke, execs, fresh):
    url = fresh("first", migrated=True)
    assert _recorded(url) is None
    assert invoke("serve", env=_env(url, index=KEY_A)).exit_code == 0
    assert _recorded(url) == index_key_fingerprint(_keys(KEY_A).index_key)
    assert KEY_A not in _recorded(url)


# the commands that start with (or touch) national IDs
STARTS = [
    ("serve",),
    ("run",),
    ("scheduler", "run"),
    ("jobs", "run", "reconcile"),
    ("demo", "seed", "--practitioners", "1", "--violations", "0", "--seed", "99"),
    ("pii", "rotate"),
]


@pytest.mark.parametrize("args", STARTS, ids=[" ".join(a[:2]) for a in STARTS])
def test_another_index_key_is_refused_at_start_up_naming_pii_rotate(invoke, execs, fresh, monkeypatch, args):
    monkeypatch.setattr(serve_command.subprocess, "Popen", _Exited)
    url = fresh("other")
    upgrade_database(url)
    _people(url, _keys(KEY_A), 2)
    assert invoke("jobs", "run", "reconcile", env=_env(url, index=KEY_A)).exit_code == 0
    result = invoke(*args, env=_env(url, index=KEY_B))
    answered(result, "POINTS_INDEX_KEY", "POINTS_INDEX_KEY_PREVIOUS", "pii rotate", most_lines=1)
    assert execs == []
    assert set(_stored_indexes(url).values()) == {_hmac(KEY_A, n) for n in _numbers(url)}


def test_an_import_of_practitioners_under_another_index_key_is_refused(invoke, fresh, tmp_path):
    url = fresh("import", migrated=True)
    people = _people(url, _keys(KEY_A), 1)
    assert invoke("jobs", "run", "reconcile", env=_env(url, index=KEY_A)).exit_code == 0
    number = next(iter(people.values()))
    csv = tmp_path / "p.csv"
    csv.write_text(f"code,name,id_number,category\n{code('P')},Again,{number},nurse\n", "utf-8")
    answered(invoke("import", "practitioners", str(csv), env=_env(url, index=KEY_B)), "pii rotate")
    assert len(_stored_indexes(url)) == 1


def _numbers(url: str) -> list[str]:
    from points_service.persistence.pii import decrypt_national_id

    engine = make_engine(url)
    keys = _keys(KEY_A)
    try:
        with make_sessionmaker(engine)() as session:
            return [
                decrypt_national_id(keys, p.national_id_cipher, associated_data=p.code.encode())
                for p in session.scalars(select(Practitioner))
            ]
    finally:
        engine.dispose()


def test_a_database_from_before_fingerprints_adopts_the_key_that_built_its_index(invoke, fresh):
    url = fresh("adopt", migrated=True)
    _people(url, _keys(KEY_A), 3)  # written before any start recorded a key
    assert _recorded(url) is None
    answered(invoke("jobs", "run", "reconcile", env=_env(url, index=KEY_B)), "pii rotate")
    assert _recorded(url) is None
    assert invoke("jobs", "run", "reconcile", env=_env(url, index=KEY_A)).exit_code == 0
    assert _recorded(url) == index_key_fingerprint(_keys(KEY_A).index_key)


def test_encryption_keys_that_cannot_read_the_stored_national_ids_are_refused(invoke, fresh):
    url = fresh("enc", migrated=True)
    _people(url, _keys(KEY_A), 1)
    other = f"k9:{KEY_B}"
    result = invoke("jobs", "run", "reconcile", env=_env(url, POINTS_ENCRYPTION_KEYS=other))
    answered(result, "POINTS_ENCRYPTION_KEYS", most_lines=1)


# -- rotating the index key ------------------------------------------------------------------------------


def test_pii_rotate_rebuilds_the_index_under_the_new_key_and_records_it(invoke, fresh):
    url = fresh("rotate", migrated=True)
    people = _people(url, _keys(KEY_A), 5)
    assert invoke("jobs", "run", "reconcile", env=_env(url, index=KEY_A)).exit_code == 0

    # the new key with the old one as previous: accepted, with a note saying what is left to do
    pending = invoke("jobs", "run", "reconcile", env=_env(url, index=KEY_B, previous=KEY_A))
    assert pending.exit_code == 0, pending.output
    assert "pii rotate" in pending.output

    rotated = invoke("pii", "rotate", "--batch", "2", env=_env(url, index=KEY_B, previous=KEY_A))
    assert rotated.exit_code == 0, rotated.output
    assert "rebuilt 5 national-ID index entries" in rotated.output
    assert "remove POINTS_INDEX_KEY_PREVIOUS" in rotated.output
    assert _stored_indexes(url) == {c: _hmac(KEY_B, n) for c, n in people.items()}
    assert _recorded(url) == index_key_fingerprint(_keys(KEY_B).index_key)

    again = invoke("pii", "rotate", env=_env(url, index=KEY_B, previous=KEY_A))
    assert "rebuilt 0 national-ID index entries" in again.output
    assert invoke("jobs", "run", "reconcile", env=_env(url, index=KEY_B)).exit_code == 0
    answered(invoke("jobs", "run", "reconcile", env=_env(url, index=KEY_A)), "pii rotate")
    done = invoke("jobs", "run", "reconcile", env=_env(url, index=KEY_B, previous=KEY_A))
    assert done.exit_code == 0 and "POINTS_INDEX_KEY_PREVIOUS can be removed" in done.output


def test_without_the_previous_key_pii_rotate_refuses_to_guess(invoke, fresh):
    url = fresh("guess", migrated=True)
    _people(url, _keys(KEY_A), 2)
    assert invoke("jobs", "run", "reconcile", env=_env(url, index=KEY_A)).exit_code == 0
    answered(invoke("pii", "rotate", env=_env(url, index=KEY_B)), "POINTS_INDEX_KEY_PREVIOUS")
    assert _recorded(url) == index_key_fingerprint(_keys(KEY_A).index_key)


def test_while_the_index_is_half_rebuilt_a_registered_national_id_is_still_a_duplicate(fresh):
    url = fresh("half", migrated=True)
    people = _people(url, _keys(KEY_A), 4)
    old, new = sorted(people)[:2], sorted(people)[2:]
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    rotating = _keys(KEY_B, previous=KEY_A)
    try:
        with transaction(sessions, write=True) as session:  # what `pii rotate` leaves when interrupted
            for person in session.scalars(select(Practitioner).where(Practitioner.code.in_(new))):
                person.national_id_index = _hmac(KEY_B, people[person.code])
        with transaction(sessions, write=True) as session:
            key, _ = create_key(session, CreateKey(role="admin", name="check"), now=utc_now())
            admin = Principal(key_id=key.id, name="check", role="admin")
            for c in old + new:
                with (
                    pytest.raises(DuplicatePractitioner, match="already held by another practitioner"),
                    session.begin_nested(),
                ):
                    _create(session, admin, rotating, code("P"), people[c])
                # the same person sent again under their own code is still a replay, not a conflict
                with session.begin_nested():
                    assert _create(session, admin, rotating, c, people[c]).created is False
            created = _create(session, admin, rotating, code("P"), new_id_number())
            assert created.created is True
            person = created.value.practitioner
            assert person.national_id_index == _hmac(KEY_B, _number_of(rotating, person))
    finally:
        engine.dispose()


def _number_of(keys: PiiKeys, person: Practitioner) -> str:
    from points_service.persistence.pii import decrypt_national_id

    return decrypt_national_id(keys, person.national_id_cipher, associated_data=person.code.encode())


def test_the_settings_carry_the_previous_index_key_to_the_web_app(monkeypatch):
    monkeypatch.setenv("POINTS_INDEX_KEY", KEY_B)
    monkeypatch.setenv("POINTS_INDEX_KEY_PREVIOUS", KEY_A)
    keys = Settings.from_env().pii_keys()
    assert keys.previous_index_key == _keys(KEY_A).index_key


def test_the_previous_index_key_must_not_be_the_current_one(invoke, tmp_path):
    env = _env(f"sqlite:///{tmp_path / 'p.db'}", index=KEY_A, previous=KEY_A)
    answered(invoke("db", "upgrade", env=env), "POINTS_INDEX_KEY_PREVIOUS", most_lines=1)


def test_the_development_index_key_is_refused_once_a_real_one_is_recorded(invoke, execs, fresh):
    url = fresh("devafter", migrated=True)
    _people(url, _keys(KEY_A), 1)
    assert invoke("serve", env=_env(url)).exit_code == 0
    env = {"POINTS_DATABASE_URL": url, "POINTS_ENCRYPTION_KEYS": ENCRYPTION, "POINTS_ALLOW_DEV_KEYS": "1"}
    answered(invoke("serve", env=env), "pii rotate", most_lines=2)
    assert DEV_INDEX_KEY not in invoke("serve", env=env).output


def test_while_the_index_key_rotates_an_import_still_finds_national_ids_under_the_previous_key(
    invoke, fresh, tmp_path
):
    url = fresh("rotimport", migrated=True)
    people = _people(url, _keys(KEY_A), 2)
    assert invoke("jobs", "run", "reconcile", env=_env(url, index=KEY_A)).exit_code == 0
    (known, number), (other, other_number) = sorted(people.items())
    csv = tmp_path / "p.csv"
    csv.write_text(
        "code,name,id_number,category\n"
        f"{code('P')},Impostor,{number},nurse\n"  # 2: a stored number under a new code
        f"{other},Person {other},{other_number},nurse\n",  # 3: the stored person, unchanged
        "utf-8",
    )
    rotating = _env(url, index=KEY_B, previous=KEY_A)
    result = invoke("import", "practitioners", str(csv), "--skip-existing", env=rotating)
    text = answered(result, "line 2: id_number is already held by another practitioner", most_lines=4)
    assert "line 3" not in text and number not in text
    assert len(_stored_indexes(url)) == 2
    assert known in _stored_indexes(url)
