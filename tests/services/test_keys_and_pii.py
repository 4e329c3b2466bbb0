"""API keys and personal data: keys kept only as hashes with a
visible prefix, revoked or expired keys refused at once, rotation with a grace period, the
operator commands; national IDs validated, found by their blind index, and re-encrypted when the
encryption key rotates."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re

import pytest
from click.testing import CliRunner
from factories import assert_problem as _problem
from factories import auth, code, make_key, new_id_number
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from points_service.cli import main
from points_service.clock import utc_now
from points_service.persistence.engine import make_engine, make_sessionmaker, transaction
from points_service.persistence.models import ApiKey, AuditEvent, Practitioner, WebhookSubscription
from points_service.persistence.pii import PiiKeys, blob_key_id, decrypt_national_id
from points_service.persistence.schema import upgrade_database
from points_service.rules.identifiers import with_check_character
from points_service.services.access import Principal
from points_service.services.errors import DuplicatePractitioner, NotAuthenticated, RuleViolation
from points_service.services.events import EVENT_TYPES
from points_service.services.keys import (
    LAST_USED_RESOLUTION,
    PRINCIPALS,
    CreateKey,
    authenticate,
    create_key,
    hash_key,
    list_keys,
    revoke_key,
    rotate_key,
    touch,
)
from points_service.services.pii_rotation import rotate_encryption
from points_service.services.registry import (
    CreateInstitution,
    CreatePractitioner,
    create_institution,
    create_practitioner,
)
from points_service.services.webhooks import CreateSubscription, _decrypt_secret, create_subscription
from points_service.settings import Settings

OLD_KEY = base64.b64encode(bytes([1]) * 32).decode()
NEW_KEY = base64.b64encode(bytes([2]) * 32).decode()
INDEX_KEY = base64.b64encode(bytes([0xEE]) * 32).decode()


def _row(session: Session, secret: str) -> ApiKey:
    return session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_key(secret))).one()


# -- keys: hashes, prefixes, revocation, expiry -----------------------------------------------------


def test_a_key_is_stored_only_as_its_sha256_with_a_visible_prefix(session):
    now = utc_now()
    key, secret = create_key(session, CreateKey(role="reviewer", name="audit desk"), now=now)
    assert re.fullmatch(r"pts_[A-Za-z0-9_-]{43}", secret)
    assert key.key_hash == hashlib.sha256(secret.encode("utf-8")).hexdigest()
    assert key.prefix == secret[:12] and key.prefix.startswith("pts_")
    stored = session.execute(select(ApiKey.__table__).where(ApiKey.id == key.id)).one()
    for value in stored:
        assert secret not in str(value)
        assert secret[12:] not in str(value)
    audit = session.scalars(
        select(AuditEvent).where(AuditEvent.object_type == "api_key", AuditEvent.object_id == str(key.id))
    ).one()
    assert audit.action == "api_key.created"
    assert audit.detail == {"prefix": key.prefix, "role": "reviewer", "name": "audit desk"}
    assert authenticate(session, secret, now=now).role == "reviewer"


def test_two_keys_never_share_a_secret_or_a_hash(session):
    secrets = {make_key(session, "inspector") for _ in range(20)}
    assert len(secrets) == 20
    assert len({hash_key(s) for s in secrets}) == 20


@pytest.mark.parametrize("by", ["prefix", "id"])
def test_a_revoked_key_gets_a_401_from_the_next_request_on(client, session, by):
    secret = make_key(session, "inspector")
    assert client.get("/v1/policy", headers=auth(secret)).status_code == 200
    row = _row(session, secret)
    revoked = revoke_key(session, row.prefix if by == "prefix" else str(row.id), now=utc_now())
    session.flush()
    assert revoked.id == row.id and revoked.revoked_at is not None
    body = _problem(client.get("/v1/policy", headers=auth(secret)), 401, "not-authenticated")
    assert body["detail"] == "this API key has been revoked"


def test_revoking_twice_changes_nothing_and_is_audited_once(session):
    secret = make_key(session, "inspector")
    row = _row(session, secret)
    first = revoke_key(session, row.prefix, now=utc_now()).revoked_at
    session.flush()
    assert revoke_key(session, row.prefix, now=utc_now() + dt.timedelta(hours=1)).revoked_at == first
    session.flush()
    actions = session.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.object_type == "api_key", AuditEvent.object_id == str(row.id))
        .order_by(AuditEvent.id)
    ).all()
    assert actions == ["api_key.created", "api_key.revoked"]


def test_revoking_an_unknown_key_is_refused(session):
    with pytest.raises(RuleViolation, match="no API key pts_nosuchkey"):
        revoke_key(session, "pts_nosuchkey", now=utc_now())


def test_an_expired_key_gets_a_401_at_once(client, session):
    secret = make_key(session, "admin", expires_at=utc_now() - dt.timedelta(seconds=1))
    body = _problem(client.get("/v1/policy", headers=auth(secret)), 401, "not-authenticated")
    assert body["detail"] == "this API key has expired"


def test_a_key_expires_exactly_at_its_expiry_instant(session):
    expires = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    secret = make_key(session, "admin", expires_at=expires)
    assert authenticate(session, secret, now=expires - dt.timedelta(microseconds=1)).role == "admin"
    with pytest.raises(NotAuthenticated, match="expired"):
        authenticate(session, secret, now=expires)


# -- rotation -------------------------------------------------------------------------------------


def test_rotation_issues_a_key_with_the_same_role_and_scope_and_the_old_one_works_through_the_grace(
    client, session, admin
):
    hospital, elsewhere = admin.institution(), admin.institution()
    old_secret = make_key(session, "hr_system", institution_code=hospital)
    old = _row(session, old_secret)
    now = utc_now()
    new, new_secret = rotate_key(session, old.prefix, grace=dt.timedelta(days=7), now=now)
    session.flush()

    assert new_secret != old_secret and new.prefix != old.prefix
    assert (new.role, new.institution_id, new.practitioner_id, new.name) == (
        old.role,
        old.institution_id,
        old.practitioner_id,
        old.name,
    )
    assert old.expires_at == now + dt.timedelta(days=7)
    assert old.revoked_at is None
    for secret in (old_secret, new_secret):
        assert client.get(f"/v1/institutions/{hospital}", headers=auth(secret)).status_code == 200
        assert client.get(f"/v1/institutions/{elsewhere}", headers=auth(secret)).status_code == 404
        assert client.post("/v1/institutions", json={}, headers=auth(secret)).status_code == 403

    end = now + dt.timedelta(days=7)
    assert authenticate(session, old_secret, now=end - dt.timedelta(seconds=1)).institution_code == hospital
    with pytest.raises(NotAuthenticated, match="expired"):
        authenticate(session, old_secret, now=end)
    assert authenticate(session, new_secret, now=end + dt.timedelta(days=365)).institution_code == hospital

    audit = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "api_key.rotated", AuditEvent.object_id == str(old.id))
    ).one()
    assert audit.detail == {"prefix": old.prefix, "replaced_by": new.prefix, "expires_at": end.isoformat()}


def test_rotation_without_grace_refuses_the_old_key_at_once(client, session):
    old_secret = make_key(session, "reviewer")
    _, new_secret = rotate_key(
        session, str(_row(session, old_secret).id), grace=dt.timedelta(0), now=utc_now()
    )
    session.flush()
    body = _problem(client.get("/v1/policy", headers=auth(old_secret)), 401, "not-authenticated")
    assert body["detail"] == "this API key has expired"
    assert client.get("/v1/policy", headers=auth(new_secret)).status_code == 200


def test_rotation_never_extends_an_earlier_expiry(session):
    now = utc_now()
    soon = now + dt.timedelta(days=1)
    old_secret = make_key(session, "inspector", expires_at=soon)
    old = _row(session, old_secret)
    rotate_key(session, old.prefix, grace=dt.timedelta(days=7), now=now)
    assert old.expires_at == soon


def test_a_revoked_key_cannot_be_rotated(session):
    secret = make_key(session, "inspector")
    prefix = _row(session, secret).prefix
    revoke_key(session, prefix, now=utc_now())
    with pytest.raises(RuleViolation, match="revoked key cannot be rotated"):
        rotate_key(session, prefix, grace=dt.timedelta(days=7), now=utc_now())


# -- last used ------------------------------------------------------------------------------------


def test_last_used_is_recorded_on_use_and_not_rewritten_within_a_minute(client, session):
    secret = make_key(session, "inspector")
    key_id = _row(session, secret).id
    assert session.get(ApiKey, key_id).last_used_at is None

    before = utc_now()
    assert client.get("/v1/policy", headers=auth(secret)).status_code == 200
    session.expire_all()
    first = session.get(ApiKey, key_id).last_used_at
    assert first is not None and before <= first <= utc_now()

    assert client.get("/v1/policy", headers=auth(secret)).status_code == 200
    session.expire_all()
    assert session.get(ApiKey, key_id).last_used_at == first

    principal = authenticate(session, secret, now=utc_now())
    touch(session, secret, principal, now=first + LAST_USED_RESOLUTION - dt.timedelta(seconds=1))
    assert session.get(ApiKey, key_id).last_used_at == first
    touch(session, secret, principal, now=first + LAST_USED_RESOLUTION)
    assert session.get(ApiKey, key_id).last_used_at == first + LAST_USED_RESOLUTION

    # a minute old: the next request records it again (once the cached key is read again)
    row = session.get(ApiKey, key_id)
    row.last_used_at = utc_now() - dt.timedelta(minutes=2)
    session.flush()
    PRINCIPALS.forget(key_id)
    before = utc_now()
    assert client.get("/v1/policy", headers=auth(secret)).status_code == 200
    session.expire_all()
    assert session.get(ApiKey, key_id).last_used_at >= before


def test_a_request_refused_for_a_revoked_key_does_not_record_a_use(client, session):
    secret = make_key(session, "inspector")
    key_id = _row(session, secret).id
    revoke_key(session, str(key_id), now=utc_now())
    session.flush()
    assert client.get("/v1/policy", headers=auth(secret)).status_code == 401
    session.expire_all()
    assert session.get(ApiKey, key_id).last_used_at is None


# -- the operator commands ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_db(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'points.db'}"
    upgrade_database(url)
    return url


@pytest.fixture
def cli(cli_db):
    runner = CliRunner()

    def run(*args: str, env: dict | None = None, ok: bool = True):
        result = runner.invoke(main, list(args), env={"POINTS_DATABASE_URL": cli_db, **(env or {})})
        if ok:
            assert result.exit_code == 0, (result.output, result.exception)
        return result

    return run


@pytest.fixture
def cli_sessions(cli_db):
    engine = make_engine(cli_db)
    yield make_sessionmaker(engine)
    engine.dispose()


def _listed(output: str, prefix: str) -> str:
    (line,) = [line for line in output.splitlines() if f" {prefix} " in line]
    return line


def test_keys_create_prints_the_key_once_and_keys_list_shows_only_its_prefix(cli, cli_sessions):
    created = cli("keys", "create", "--role", "inspector", "--name", "field team 7")
    secret = created.stdout.strip()
    assert re.fullmatch(r"pts_[A-Za-z0-9_-]{43}", secret)
    prefix = secret[:12]
    assert re.fullmatch(
        rf"created inspector key {prefix}… \(id \d+\); it is shown only now:\n", created.stderr
    )

    listed = cli("keys", "list").output
    assert listed.splitlines()[0].split() == [
        "id",
        "prefix",
        "role",
        "scope",
        "last",
        "used",
        "expires",
        "state",
        "name",
    ]
    line = _listed(listed, prefix)
    assert "inspector" in line and line.rstrip().endswith("active field team 7")
    assert secret not in listed and secret[12:] not in listed and secret[12:20] not in listed
    with transaction(cli_sessions, write=False) as session:
        assert authenticate(session, secret, now=utc_now()).name == "field team 7"


def test_keys_create_with_an_expiry_and_a_scope(cli, cli_sessions):
    with transaction(cli_sessions, write=True) as session:
        key, _ = create_key(session, CreateKey(role="admin", name="setup"), now=utc_now())
        admin = Principal(key_id=key.id, name="setup", role="admin")
        hospital = code("H")
        create_institution(
            session,
            admin,
            CreateInstitution(code=hospital, name="H", kind="medical_institution", region_code="130100"),
            now=utc_now(),
            request_id=None,
        )
    secret = cli(
        "keys", "create", "--role", "hr_system", "--institution", hospital, "--expires-in-days", "30"
    ).stdout.strip()
    line = _listed(cli("keys", "list").output, secret[:12])
    assert hospital in line and "hr_system" in line
    with transaction(cli_sessions, write=False) as session:
        principal = authenticate(session, secret, now=utc_now())
        assert (principal.role, principal.institution_code) == ("hr_system", hospital)
        expires = _row(session, secret).expires_at
    assert dt.timedelta(days=29, hours=23) < expires - utc_now() <= dt.timedelta(days=30)

    refused = cli("keys", "create", "--role", "hr_system", ok=False)
    assert refused.exit_code == 1
    assert "an hr_system key is bound to one institution" in refused.output


def test_keys_revoke_by_prefix_refuses_the_key_from_then_on(cli, cli_sessions):
    secret = cli("keys", "create", "--role", "reviewer").stdout.strip()
    prefix = secret[:12]
    revoked = cli("keys", "revoke", prefix)
    assert re.fullmatch(rf"revoked {prefix} \(id \d+\)\n", revoked.output)
    assert " revoked " in _listed(cli("keys", "list").output, prefix)
    with transaction(cli_sessions, write=False) as session, pytest.raises(NotAuthenticated, match="revoked"):
        authenticate(session, secret, now=utc_now())

    unknown = cli("keys", "revoke", "pts_nosuchkey", ok=False)
    assert unknown.exit_code == 1 and "no API key pts_nosuchkey" in unknown.output


def test_keys_rotate_by_id_issues_a_new_key_and_the_old_one_expires_after_the_grace(cli, cli_sessions):
    old_secret = cli("keys", "create", "--role", "reviewer", "--name", "desk").stdout.strip()
    with transaction(cli_sessions, write=False) as session:
        old_id = _row(session, old_secret).id
    rotated = cli("keys", "rotate", str(old_id), "--grace-days", "3")
    new_secret = rotated.stdout.strip()
    assert new_secret != old_secret and new_secret.startswith("pts_")
    assert "the old one expires in 3 days; shown only now:" in rotated.stderr
    listed = cli("keys", "list").output
    assert new_secret not in listed and old_secret not in listed
    _listed(listed, new_secret[:12])
    now = utc_now()
    with transaction(cli_sessions, write=False) as session:
        new = authenticate(session, new_secret, now=now)
        assert (new.role, new.name) == ("reviewer", "desk")
        assert authenticate(session, old_secret, now=now + dt.timedelta(days=2)).role == "reviewer"
        with pytest.raises(NotAuthenticated, match="expired"):
            authenticate(session, old_secret, now=now + dt.timedelta(days=3, minutes=1))
        assert {k.prefix for k, _, _ in list_keys(session)} >= {old_secret[:12], new_secret[:12]}


def test_pii_generate_key_prints_a_fresh_32_byte_key(cli):
    first, second = cli("pii", "generate-key").stdout.strip(), cli("pii", "generate-key").stdout.strip()
    assert first != second
    assert len(base64.b64decode(first, validate=True)) == 32


# -- national IDs at the API -------------------------------------------------------------------------


def _wrong_check_digit(number: str) -> str:
    return number[:17] + next(c for c in "0123456789X" if c != number[17])


def test_a_national_id_with_a_wrong_check_digit_is_a_422_naming_id_number(client, admin):
    number = new_id_number()
    c = code("P")
    response = client.post(
        "/v1/practitioners",
        json={"code": c, "name": "Zhao Liu", "id_number": _wrong_check_digit(number), "category": "nurse"},
        headers=admin.headers,
    )
    body = _problem(response, 422, "rule-violation")
    assert body["errors"] == {"id_number": ["national ID: check digit does not match (GB 11643 MOD 11-2)"]}
    assert body["rule"] == "docs/rules.md rule 2 (GB 11643)"
    admin.get(f"/v1/practitioners/{c}", status=404)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("13010219800230123", "18 characters"),
        ("130102198002301234", "birth date"),
        ("1301021980010112AB", "digit"),
    ],
)
def test_a_malformed_national_id_is_a_422_naming_id_number(client, admin, bad, message):
    response = client.post(
        "/v1/practitioners",
        json={"code": code("P"), "name": "Zhao Liu", "id_number": bad, "category": "nurse"},
        headers=admin.headers,
    )
    body = _problem(response, 422, "rule-violation")
    assert message in body["errors"]["id_number"][0]


def _id_ending_in_x() -> str:
    numbers = (with_check_character(f"13010219900101{i:03d}") for i in range(1000))
    return next(n for n in numbers if n.endswith("X"))


@pytest.mark.parametrize("spelling", ["same", "lowercase x", "padded"])
def test_the_blind_index_finds_the_person_so_the_same_id_under_another_code_is_a_409(client, admin, spelling):
    number = _id_ending_in_x()
    first = code("P")
    admin.post("/v1/practitioners", {"code": first, "name": "A", "id_number": number, "category": "nurse"})
    variant = {"same": number, "lowercase x": number.lower(), "padded": f"  {number} "}[spelling]
    response = client.post(
        "/v1/practitioners",
        json={"code": code("P"), "name": "B", "id_number": variant, "category": "nurse"},
        headers=admin.headers,
    )
    body = _problem(response, 409, "duplicate-practitioner")
    assert body["detail"] == "this national ID number is already held by another practitioner code"
    assert number not in response.get_data(as_text=True)
    # and the same person posted again under their own code, in any spelling, is a replay
    replay = client.post(
        "/v1/practitioners",
        json={"code": first, "name": "A", "id_number": variant, "category": "nurse"},
        headers=admin.headers,
    )
    assert replay.status_code == 200, replay.get_data(as_text=True)


# -- encryption key rotation ------------------------------------------------------------------------


@pytest.fixture
def pii_db(tmp_path):
    url = f"sqlite:///{tmp_path / 'points.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    yield url, make_sessionmaker(engine)
    engine.dispose()


def _keys(spec: str) -> PiiKeys:
    return PiiKeys.from_settings(spec, INDEX_KEY)


def _seed(sessions, keys: PiiKeys, n: int) -> tuple[dict[str, str], int, str]:
    """n practitioners and one webhook secret under `keys`: ({code: national id}, webhook id, secret)."""
    settings = Settings(database_url="sqlite://", rate_limit="")
    people = {}
    with transaction(sessions, write=True) as session:
        key, _ = create_key(session, CreateKey(role="admin", name="seed"), now=utc_now())
        admin = Principal(key_id=key.id, name="seed", role="admin")
        for _ in range(n):
            c, number = code("P"), new_id_number()
            create_practitioner(
                session,
                admin,
                CreatePractitioner(code=c, name=f"Person {c}", id_number=number, category="nurse"),
                keys=keys,
                policies=settings.policies,
                now=utc_now(),
                request_id=None,
            )
            people[c] = number
        created = create_subscription(
            session,
            admin,
            CreateSubscription(url="http://127.0.0.1:9/hook", event_types=(EVENT_TYPES[0],)),
            keys=keys,
            allow_private=True,
            now=utc_now(),
        )
    return people, created.subscription.id, created.secret


def _stored(sessions) -> tuple[dict[str, tuple[bytes, str]], bytes]:
    with transaction(sessions, write=False) as session:
        people = {
            p.code: (p.national_id_cipher, p.national_id_index) for p in session.scalars(select(Practitioner))
        }
        (webhook,) = session.scalars(select(WebhookSubscription.secret_cipher)).all()
    return people, webhook


def test_rotating_the_encryption_key_re_encrypts_everything_and_the_old_key_can_then_be_dropped(pii_db):
    _, sessions = pii_db
    old = _keys(f"k1:{OLD_KEY}")
    people, webhook_id, webhook_secret = _seed(sessions, old, 3)
    before, webhook_before = _stored(sessions)
    assert {blob_key_id(c) for c, _ in before.values()} == {"k1"} and blob_key_id(webhook_before) == "k1"

    rotated = _keys(f"k2:{NEW_KEY},k1:{OLD_KEY}")
    assert rotate_encryption(sessions, rotated, now=utc_now(), batch=2) == {
        "practitioners": 3,
        "webhooks": 1,
        "indexes": 0,
    }

    after, webhook_after = _stored(sessions)
    assert {blob_key_id(c) for c, _ in after.values()} == {"k2"} and blob_key_id(webhook_after) == "k2"
    # the blind index does not change, so look-ups keep working
    assert {c: i for c, (_, i) in after.items()} == {c: i for c, (_, i) in before.items()}

    nothing_left = {"practitioners": 0, "webhooks": 0, "indexes": 0}
    assert rotate_encryption(sessions, rotated, now=utc_now()) == nothing_left
    assert _stored(sessions) == (after, webhook_after)

    k2_only = _keys(f"k2:{NEW_KEY}")
    for c, (cipher, _) in after.items():
        assert decrypt_national_id(k2_only, cipher, associated_data=c.encode()) == people[c]
    with transaction(sessions, write=False) as session:
        subscription = session.get(WebhookSubscription, webhook_id)
        assert _decrypt_secret(k2_only, subscription) == webhook_secret
        # the index still finds each person, with the old key gone
        settings = Settings(database_url="sqlite://", rate_limit="")
        c, number = next(iter(people.items()))
        key, _ = create_key(session, CreateKey(role="admin", name="check"), now=utc_now())
        admin = Principal(key_id=key.id, name="check", role="admin")
        with pytest.raises(DuplicatePractitioner, match="already held by another practitioner code"):
            create_practitioner(
                session,
                admin,
                CreatePractitioner(code=code("P"), name="Impostor", id_number=number, category="nurse"),
                keys=k2_only,
                policies=settings.policies,
                now=utc_now(),
                request_id=None,
            )
        session.rollback()


def test_the_pii_rotate_command_re_encrypts_under_the_first_key_and_a_rerun_does_nothing(pii_db):
    url, sessions = pii_db
    people, _, _ = _seed(sessions, _keys(f"k1:{OLD_KEY}"), 2)
    runner = CliRunner()
    env = {
        "POINTS_DATABASE_URL": url,
        "POINTS_ENCRYPTION_KEYS": f"k2:{NEW_KEY},k1:{OLD_KEY}",
        "POINTS_INDEX_KEY": INDEX_KEY,
    }
    first = runner.invoke(main, ["pii", "rotate", "--batch", "1"], env=env)
    assert first.exit_code == 0, (first.output, first.exception)
    assert first.output == "re-encrypted 2 national IDs and 1 webhook secrets under key k2\n"
    again = runner.invoke(main, ["pii", "rotate"], env=env)
    assert again.output == "re-encrypted 0 national IDs and 0 webhook secrets under key k2\n"
    after, _ = _stored(sessions)
    k2_only = _keys(f"k2:{NEW_KEY}")
    assert {
        c: decrypt_national_id(k2_only, b, associated_data=c.encode()) for c, (b, _) in after.items()
    } == people
    with transaction(sessions, write=False) as session:
        assert session.scalar(select(func.count()).select_from(Practitioner)) == 2
