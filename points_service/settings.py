"""Settings, read once from the environment (prefix POINTS_) and validated at start-up."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from environs import Env, ValidationError

from .rules.appeals import WorkdayCalendar, parse_holidays
from .rules.policy import PolicySet, parse_catalogue, parse_profile

DEFAULT_DATABASE_URL = "sqlite:///var/points.db"
# Development keys: make run and the tests use them; production must set its own (see README).
DEV_ENCRYPTION_KEYS = "dev1:ZGV2ZWxvcG1lbnQta2V5LWRvLW5vdC11c2UtISEhISE="
DEV_INDEX_KEY = "ZGV2ZWxvcG1lbnQtaW5kZXgta2V5LW5vdC1wcm9kISE="


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
    # the framework-floor endpoints of `make bench`; never in production
    bench_endpoints: bool = False
    policies: PolicySet = field(default_factory=load_policy_set, compare=False, repr=False)
    calendar: WorkdayCalendar = field(default_factory=load_workday_calendar, compare=False, repr=False)

    @classmethod
    def from_env(cls) -> Settings:
        env = Env(prefix="POINTS_", eager=False, expand_vars=False)
        database_url = env.str("DATABASE_URL", DEFAULT_DATABASE_URL)
        read_url = env.str("DATABASE_READ_URL", None)
        default_profile = env.str("DEFAULT_PROFILE", "hebei-2025")
        profiles_dir = env.path("PROFILES_DIR", None)
        encryption_keys = _secret(env, "ENCRYPTION_KEYS", DEV_ENCRYPTION_KEYS)
        index_key = _secret(env, "INDEX_KEY", DEV_INDEX_KEY)
        log_level = env.str("LOG_LEVEL", "INFO")
        holidays_file = env.path("HOLIDAYS_FILE", None)
        webhook_allow_private = env.bool("WEBHOOK_ALLOW_PRIVATE", False)
        rate_limit = env.str("RATE_LIMIT", "200 per second")
        auth_failure_limit = env.str("AUTH_FAILURE_LIMIT", "20 per minute")
        metrics_token = _secret(env, "METRICS_TOKEN", "") or None
        metrics_port = env.int("METRICS_PORT", None, validate=lambda port: 0 < port < 65536)
        redis_url = env.str("REDIS_URL", None)
        max_body_bytes = env.int("MAX_BODY_BYTES", 1024 * 1024)
        bench_endpoints = env.bool("BENCH_ENDPOINTS", False)
        try:
            env.seal()
        except ValidationError as exc:
            raise SystemExit(f"invalid settings: {exc}") from exc
        return cls(
            database_url=database_url,
            database_read_url=read_url,
            default_profile=default_profile,
            profiles_dir=profiles_dir,
            encryption_keys=encryption_keys,
            index_key=index_key,
            log_level=log_level,
            holidays_file=holidays_file,
            webhook_allow_private=webhook_allow_private,
            rate_limit=rate_limit,
            auth_failure_limit=auth_failure_limit,
            metrics_token=metrics_token,
            metrics_port=metrics_port,
            redis_url=redis_url,
            max_body_bytes=max_body_bytes,
            bench_endpoints=bench_endpoints,
            policies=load_policy_set(default_profile, profiles_dir),
            calendar=load_workday_calendar(holidays_file),
        )


def _secret(env: Env, name: str, default: str) -> str:
    """A secret from POINTS_<NAME> or the file named by POINTS_<NAME>_FILE."""
    path = env.path(f"{name}_FILE", None)
    if path is not None:
        return Path(path).read_text("utf-8").strip()
    return env.str(name, default)
