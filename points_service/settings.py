"""Settings, read once from the environment (prefix POINTS_) and validated at start-up.

`Settings.from_env()` checks every setting before anything starts and raises `SettingsError`
with one line per bad setting, naming its variable; a command prints those lines and stops.
"""

from __future__ import annotations

import hmac
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from environs import Env, EnvValidationError, validate
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .persistence.pii import InvalidKeySetting, PiiKeys
from .persistence.schema import project_root
from .rules.appeals import WorkdayCalendar, parse_holidays
from .rules.policy import PolicySet, parse_catalogue, parse_profile

# Development keys: make run and the tests use them; `serve` refuses them (see README).
DEV_ENCRYPTION_KEYS = "dev1:ZGV2ZWxvcG1lbnQta2V5LWRvLW5vdC11c2UtISEhISE="
DEV_INDEX_KEY = "ZGV2ZWxvcG1lbnQtaW5kZXgta2V5LW5vdC1wcm9kISE="
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
REDIS_SCHEMES = ("redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster")
# what each number means, for the line that refuses a value
_EXPECTED = {
    "POINTS_MAX_BODY_BYTES": "a number of bytes, e.g. 1048576 for 1 MiB",
    "POINTS_MIGRATION_LOCK_WAIT": "a number of seconds, e.g. 120",
    "POINTS_WEB_WORKERS": "a whole number of worker processes, at least 1",
    "POINTS_WEB_THREADS": "a whole number of threads per worker, at least 1",
    "PORT": "a TCP port number, 1-65535",
    "POINTS_CONSOLE_IDLE_MINUTES": "a whole number of minutes, at least 1",
}


# Absolute, so the database does not depend on the folder a command is started from.
DEFAULT_DATABASE_URL = f"sqlite:///{project_root() / 'var' / 'points.db'}"


class SettingsError(Exception):
    """Settings that cannot be used: (variable, what is wrong) for each bad one."""

    def __init__(self, problems: Sequence[tuple[str, str]]):
        self.problems = list(problems)
        super().__init__("\n".join(f"{name}: {problem}" for name, problem in self.problems))


def normalise_database_url(raw: str) -> str:
    """A SQLAlchemy URL this service can use.

    `postgres://` (what Heroku-style platforms hand out) and `postgresql://` without a driver
    both mean PostgreSQL through psycopg 3, the only PostgreSQL driver installed.
    Raises ValueError saying what is wrong.
    """
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ValueError("is not a database URL (postgresql://user@host/db or sqlite:///path)") from None
    backend, _, driver = url.drivername.partition("+")
    if backend in ("postgres", "postgresql") and driver in ("", "psycopg"):
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if backend == "postgresql":
        raise ValueError(f"uses the driver {driver!r}, which is not installed; use postgresql://…")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        return raw
    raise ValueError(f"names a {backend!r} database; this service runs on PostgreSQL or SQLite")


def load_policy_set(default_id: str = "hebei-2025", extra_dir: Path | None = None) -> PolicySet:
    """Read the shipped profiles (and any operator-supplied ones) into frozen Policy objects."""
    root = resources.files("points_service.rules") / "profiles"
    catalogue = parse_catalogue(tomllib.loads((root / "catalogue.toml").read_text("utf-8")))
    texts = [
        f.read_text("utf-8")
        for f in root.iterdir()
        if f.name.endswith(".toml") and f.name != "catalogue.toml"
    ]
    if extra_dir is not None:
        texts.extend(p.read_text("utf-8") for p in sorted(extra_dir.glob("*.toml")))
    profiles = {}
    for text in texts:
        policy = parse_profile(tomllib.loads(text), catalogue)
        if policy.id in profiles:
            raise ValueError(f"profile id {policy.id!r} is defined twice")
        profiles[policy.id] = policy
    return PolicySet(profiles=profiles, default_id=default_id)


def load_workday_calendar(path: Path | None = None) -> WorkdayCalendar:
    """The operator's holiday table for years chinese-calendar does not know (rules/calendars)."""
    if path is not None:
        return parse_holidays(tomllib.loads(path.read_text("utf-8")))
    shipped = resources.files("points_service.rules") / "calendars" / "holidays.toml"
    return parse_holidays(tomllib.loads(shipped.read_text("utf-8")))


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    database_read_url: str | None = None
    default_profile: str = "hebei-2025"
    profiles_dir: Path | None = None
    encryption_keys: str = DEV_ENCRYPTION_KEYS
    index_key: str = DEV_INDEX_KEY
    # the index key before the current one, while `pii rotate` rebuilds the index (README)
    index_key_previous: str | None = None
    # `serve` refuses the development keys unless this is set (make run sets it)
    allow_dev_keys: bool = False
    max_batch: int = 1000
    log_level: str = "INFO"
    holidays_file: Path | None = None
    # webhook URLs must be public https unless this is set (tests and local receivers only)
    webhook_allow_private: bool = False
    # per API key, flask-limiter notation; empty disables (contract fuzzing)
    rate_limit: str = "200 per second"
    # requests with an unknown, revoked or expired key, per client address; empty disables
    auth_failure_limit: str = "20 per minute"
    # /metrics on the API port needs `Authorization: Bearer <token>`; unset: it answers 404
    metrics_token: str | None = None
    # the gunicorn master serves /metrics on this port instead, and the API port answers 404
    metrics_port: int | None = None
    redis_url: str | None = None
    max_body_bytes: int = 1024 * 1024
    # how long a worker trusts a key it has checked: a revocation elsewhere takes this long at most
    key_cache_seconds: float = 5.0
    port: int = 8000
    # signs the console's session cookies; unset: derived from the index key (console/base.py)
    console_secret: str | None = field(default=None, repr=False)
    # a console session ends after this many minutes without a request
    console_idle_minutes: int = 30
    policies: PolicySet = field(default_factory=load_policy_set, compare=False, repr=False)
    calendar: WorkdayCalendar = field(default_factory=load_workday_calendar, compare=False, repr=False)

    def pii_keys(self) -> PiiKeys:
        return PiiKeys.from_settings(self.encryption_keys, self.index_key, self.index_key_previous)

    def development_keys(self) -> list[str]:
        """The key variables still at the public development keys. An encryption key kept only
        to decrypt (after the first) does not count: it is how one rotates away from it."""
        keys, dev = self.pii_keys(), _dev_keys()
        found = []
        if hmac.compare_digest(keys.encryption_keys[keys.active_key_id], dev.encryption_keys["dev1"]):
            found.append("POINTS_ENCRYPTION_KEYS")
        if hmac.compare_digest(keys.index_key, dev.index_key):
            found.append("POINTS_INDEX_KEY")
        return found

    @classmethod
    def from_env(cls) -> Settings:
        """Read and check every setting; SettingsError names each variable that is wrong."""
        env = Env(prefix="POINTS_", eager=False, expand_vars=False)
        plain = Env(eager=False, expand_vars=False)
        at_least_1 = validate.Range(min=1)
        database_url = env.str("DATABASE_URL", DEFAULT_DATABASE_URL)
        read_url = env.str("DATABASE_READ_URL", None)
        default_profile = env.str("DEFAULT_PROFILE", "hebei-2025")
        profiles_dir = env.path("PROFILES_DIR", None)
        log_level = env.str("LOG_LEVEL", "INFO")
        holidays_file = env.path("HOLIDAYS_FILE", None)
        webhook_allow_private = env.bool("WEBHOOK_ALLOW_PRIVATE", False)
        rate_limit = env.str("RATE_LIMIT", "200 per second")
        auth_failure_limit = env.str("AUTH_FAILURE_LIMIT", "20 per minute")
        metrics_port = env.int("METRICS_PORT", None, validate=lambda port: 0 < port < 65536)
        redis_url = env.str("REDIS_URL", None)
        max_body_bytes = env.int("MAX_BODY_BYTES", 1024 * 1024, validate=at_least_1)
        key_cache_seconds = env.float("KEY_CACHE_SECONDS", 5.0, validate=validate.Range(min=0, max=300))
        console_idle_minutes = env.int("CONSOLE_IDLE_MINUTES", 30, validate=at_least_1)
        allow_dev_keys = env.bool("ALLOW_DEV_KEYS", False)
        # read by the migrations and by gunicorn_conf; checked here so that they fail in one line too
        env.float("MIGRATION_LOCK_WAIT", 120, validate=validate.Range(min=0))
        env.int("WEB_WORKERS", None, validate=at_least_1)
        env.int("WEB_THREADS", None, validate=at_least_1)
        port = plain.int("PORT", 8000, validate=validate.Range(min=1, max=65535))
        given = {name: (env.str(name, None), env.path(f"{name}_FILE", None)) for name in _SECRETS}
        problems = _sealed(env) + _sealed(plain)

        secrets = {name: _secret(name, value, path, problems) for name, (value, path) in given.items()}
        metrics_token = secrets["METRICS_TOKEN"] or None
        # unset means the development keys; set but empty is a mistake that parsing reports
        encryption_keys = _or(secrets["ENCRYPTION_KEYS"], DEV_ENCRYPTION_KEYS)
        index_key = _or(secrets["INDEX_KEY"], DEV_INDEX_KEY)
        console_secret = secrets["CONSOLE_SECRET"] or None
        problems += _key_problems(encryption_keys, index_key, secrets["INDEX_KEY_PREVIOUS"], given)
        urls = _database_urls(database_url, read_url, problems)
        level = log_level.upper()
        problems += _format_problems(log_level, rate_limit, auth_failure_limit, redis_url)
        policies, calendar = _load_rules(default_profile, profiles_dir, holidays_file, problems)
        if problems:
            raise SettingsError(problems)
        assert policies is not None and calendar is not None
        return cls(
            database_url=urls["POINTS_DATABASE_URL"],
            database_read_url=urls.get("POINTS_DATABASE_READ_URL"),
            default_profile=default_profile,
            profiles_dir=profiles_dir,
            encryption_keys=encryption_keys,
            index_key=index_key,
            index_key_previous=secrets["INDEX_KEY_PREVIOUS"],
            allow_dev_keys=allow_dev_keys,
            log_level=level,
            holidays_file=holidays_file,
            webhook_allow_private=webhook_allow_private,
            rate_limit=rate_limit,
            auth_failure_limit=auth_failure_limit,
            metrics_token=metrics_token,
            metrics_port=metrics_port,
            redis_url=redis_url,
            max_body_bytes=max_body_bytes,
            key_cache_seconds=key_cache_seconds,
            port=port,
            console_secret=console_secret,
            console_idle_minutes=console_idle_minutes,
            policies=policies,
            calendar=calendar,
        )


def _key_problems(
    encryption_keys: str, index_key: str, previous: str | None, given: dict[str, tuple[Any, Any]]
) -> list[tuple[str, str]]:
    try:
        PiiKeys.from_settings(encryption_keys, index_key, previous)
    except InvalidKeySetting as exc:
        name = exc.setting.upper()
        variable = f"POINTS_{name}_FILE" if given[name][1] else f"POINTS_{name}"
        return [(variable, f"{exc} (`points-service pii generate-key` prints a new key)")]
    return []


def _database_urls(
    database_url: str, read_url: str | None, problems: list[tuple[str, str]]
) -> dict[str, str]:
    urls = {}
    for name, raw in (("POINTS_DATABASE_URL", database_url), ("POINTS_DATABASE_READ_URL", read_url)):
        if raw is not None:
            try:
                urls[name] = normalise_database_url(raw)
            except ValueError as exc:
                problems.append((name, f"{_shown_url(raw)} {exc}"))
    return urls


def _format_problems(
    log_level: str, rate_limit: str, auth_failure_limit: str, redis_url: str | None
) -> list[tuple[str, str]]:
    """Values environs takes as text but that must have a shape: a log level, limits, a Redis URL."""
    problems = []
    if log_level.upper() not in LOG_LEVELS:
        problems.append(("POINTS_LOG_LEVEL", f"{log_level!r} is not one of {', '.join(LOG_LEVELS)}"))
    for name, limit in (("POINTS_RATE_LIMIT", rate_limit), ("POINTS_AUTH_FAILURE_LIMIT", auth_failure_limit)):
        if limit and not _is_rate_limit(limit):
            problems.append((name, f"{limit!r} is not a limit (e.g. '200 per second')"))
    if redis_url and redis_url.partition("://")[0] not in REDIS_SCHEMES:
        problems.append(("POINTS_REDIS_URL", "is not a Redis URL (e.g. redis://127.0.0.1:6379/0)"))
    return problems


def _load_rules(
    default_profile: str,
    profiles_dir: Path | None,
    holidays_file: Path | None,
    problems: list[tuple[str, str]],
) -> tuple[PolicySet | None, WorkdayCalendar | None]:
    """The policy profiles and the workday calendar, read once; an operator's file that is wrong in
    any way is one line naming its variable."""
    policies = calendar = None
    if profiles_dir is not None and not profiles_dir.is_dir():
        problems.append(("POINTS_PROFILES_DIR", f"{profiles_dir} is not a folder"))
    else:
        try:
            policies = load_policy_set(default_profile, profiles_dir)
        except Exception as exc:
            name = "POINTS_DEFAULT_PROFILE" if "is not loaded" in str(exc) else "POINTS_PROFILES_DIR"
            problems.append((name, str(exc)))
    try:
        calendar = load_workday_calendar(holidays_file)
    except Exception as exc:
        problems.append(("POINTS_HOLIDAYS_FILE", f"cannot use {holidays_file}: {exc}"))
    return policies, calendar


_SECRETS = ("ENCRYPTION_KEYS", "INDEX_KEY", "INDEX_KEY_PREVIOUS", "METRICS_TOKEN", "CONSOLE_SECRET")


def _sealed(env: Env) -> list[tuple[str, str]]:
    """The variables environs refused, each with its value and what was expected."""
    try:
        env.seal()
    except EnvValidationError as exc:
        refused = exc.error_messages
        if not isinstance(refused, Mapping):  # environs names every variable; a bare list would be a bug
            raise
        return [(name, _refused(name, messages)) for name, messages in refused.items()]
    return []


def _refused(name: str, messages: Sequence[str]) -> str:
    reason = " ".join(messages).rstrip(".").lower()
    expected = _EXPECTED.get(name)
    refused = f"{os.environ.get(name, '')!r} is not valid ({reason})"
    return f"{refused}; expected {expected}" if expected else refused


def _secret(name: str, value: str | None, path: Path | None, problems: list[tuple[str, str]]) -> str | None:
    """A secret from POINTS_<NAME>, or from the file named by POINTS_<NAME>_FILE."""
    if path is None:
        return value
    try:
        return path.read_text("utf-8").strip()
    except OSError as exc:
        problems.append((f"POINTS_{name}_FILE", f"cannot read {path}: {exc.strerror}"))
        return None


def _or(value: str | None, default: str) -> str:
    return default if value is None else value


def _is_rate_limit(text: str) -> bool:
    from limits import parse_many

    try:
        parse_many(text)
    except ValueError:
        return False
    return True


def _shown_url(raw: str) -> str:
    """The URL for a message, with any password hidden."""
    try:
        return repr(make_url(raw).render_as_string(hide_password=True))
    except ArgumentError:
        return repr(raw.rpartition("@")[2])


def _dev_keys() -> PiiKeys:
    return PiiKeys.from_settings(DEV_ENCRYPTION_KEYS, DEV_INDEX_KEY)
