"""`points-service`: every operator command."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from sqlalchemy.engine import make_url

from .settings import Settings


def _settings() -> Settings:
    return Settings.from_env()


def migrations_dir() -> Path:
    """migrations/ next to the working directory (the image's /app) or next to the package (a checkout)."""
    for candidate in (Path.cwd() / "migrations", Path(__file__).resolve().parent.parent / "migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise click.ClickException("cannot find the migrations folder (run from the project or image root)")


def alembic_config(database_url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("path_separator", "os")
    config.attributes["database_url"] = database_url
    return config


def _ensure_sqlite_dir(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def upgrade_database(url: str) -> None:
    from alembic import command

    _ensure_sqlite_dir(url)
    command.upgrade(alembic_config(url), "head")


@click.group(help="points_service: demerit points and payment eligibility (医保支付资格管理).")
def main() -> None:
    pass


# -- database ------------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Schema migrations (the only way the schema is created)."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database at POINTS_DATABASE_URL to the newest revision."""
    upgrade_database(_settings().database_url)
    click.echo("database is at the newest revision")


@db.command("check")
def db_check() -> None:
    """Fail if the models and the migrated schema differ."""
    from alembic import command

    command.check(alembic_config(_settings().database_url))


@db.command("current")
def db_current() -> None:
    """Print the database's revision."""
    from alembic import command

    command.current(alembic_config(_settings().database_url), verbose=False)


# -- keys -----------------------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """API keys (stored hashed; the key is printed once)."""


@keys.command("create")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["admin", "inspector", "reviewer", "hr_system", "practitioner"]),
)
@click.option("--institution", "institution_code", help="institution code (hr_system keys)")
@click.option("--practitioner", "practitioner_code", help="practitioner code (practitioner keys)")
@click.option("--name", default=None, help="who holds the key")
@click.option("--expires-in-days", type=click.IntRange(min=1), default=None)
def keys_create(role, institution_code, practitioner_code, name, expires_in_days) -> None:
    """Create an API key and print it once."""
    from .clock import utc_now
    from .persistence.engine import transaction
    from .services.errors import PointsServiceError
    from .services.keys import CreateKey, create_key

    settings = _settings()
    now = utc_now()
    expires = now + dt.timedelta(days=expires_in_days) if expires_in_days else None
    try:
        with _sessions(settings.database_url) as sessions, transaction(sessions, write=True) as session:
            key, secret = create_key(
                session,
                CreateKey(
                    role=role,
                    name=name or role,
                    institution_code=institution_code,
                    practitioner_code=practitioner_code,
                    expires_at=expires,
                ),
                now=now,
            )
    except PointsServiceError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(f"created {role} key {key.prefix}… (id {key.id}); it is shown only now:", err=True)
    click.echo(secret)


@keys.command("list")
def keys_list() -> None:
    """List keys: prefix, role, scope, name, created, last used, expiry, revocation (never the key)."""
    from .persistence.engine import transaction
    from .services.keys import list_keys

    with _sessions(_settings().database_url) as sessions, transaction(sessions, write=False) as session:
        rows = list_keys(session)
    click.echo(
        f"{'id':>4}  {'prefix':<14} {'role':<12} {'scope':<20} {'last used':<20} {'expires':<20} state  name"
    )
    for key, institution, practitioner in rows:
        state = "revoked" if key.revoked_at else "active"
        click.echo(
            f"{key.id:>4}  {key.prefix:<14} {key.role:<12} {(institution or practitioner or '-'):<20} "
            f"{_when(key.last_used_at):<20} {_when(key.expires_at):<20} {state:<6} {key.name}"
        )


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


@keys.command("revoke")
@click.argument("key_ref")
def keys_revoke(key_ref: str) -> None:
    """Revoke a key by id or prefix; it gets 401 from the next request on."""
    from .clock import utc_now
    from .persistence.engine import transaction
    from .services.errors import PointsServiceError
    from .services.keys import revoke_key

    try:
        with _sessions(_settings().database_url) as sessions, transaction(sessions, write=True) as session:
            key = revoke_key(session, key_ref, now=utc_now())
    except PointsServiceError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(f"revoked {key.prefix} (id {key.id})")


@keys.command("rotate")
@click.argument("key_ref")
@click.option(
    "--grace-days",
    type=click.IntRange(min=0),
    default=7,
    show_default=True,
    help="how long the old key keeps working",
)
def keys_rotate(key_ref: str, grace_days: int) -> None:
    """Issue a new key with the same role and scope; the old one expires after the grace period."""
    from .clock import utc_now
    from .persistence.engine import transaction
    from .services.errors import PointsServiceError
    from .services.keys import rotate_key

    try:
        with _sessions(_settings().database_url) as sessions, transaction(sessions, write=True) as session:
            key, secret = rotate_key(session, key_ref, grace=dt.timedelta(days=grace_days), now=utc_now())
    except PointsServiceError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(
        f"new key {key.prefix}… (id {key.id}); the old one expires in {grace_days} days; shown only now:",
        err=True,
    )
    click.echo(secret)


# -- personal data --------------------------------------------------------------------------------


@main.group()
def pii() -> None:
    """Encryption keys for national ID numbers (and webhook secrets)."""


@pii.command("generate-key")
def pii_generate_key() -> None:
    """Print a new random 32-byte key (base64) for POINTS_ENCRYPTION_KEYS or POINTS_INDEX_KEY."""
    from .persistence.pii import generate_key

    click.echo(generate_key())


@pii.command("rotate")
@click.option("--batch", type=click.IntRange(min=1), default=1000, show_default=True)
def pii_rotate(batch: int) -> None:
    """Re-encrypt every stored secret under the active (first) key of POINTS_ENCRYPTION_KEYS.

    Rotation: put the new key first and keep the old one after it, run this, then drop the old
    key. Safe to interrupt and re-run: rows already under the active key are skipped.
    """
    from .services.pii_rotation import rotate_encryption

    settings = _settings()
    with _runtime(settings) as (sessions, keys):
        counts = rotate_encryption(sessions, keys, batch=batch)
    click.echo(
        f"re-encrypted {counts['practitioners']} national IDs and {counts['webhooks']} webhook secrets "
        f"under key {keys.active_key_id}"
    )


# -- serving --------------------------------------------------------------------------------------


def _ensure_admin_key(settings: Settings) -> None:
    from .clock import utc_now
    from .persistence.engine import transaction
    from .services.keys import CreateKey, create_key, has_admin_key

    with _sessions(settings.database_url) as sessions, transaction(sessions, write=True) as session:
        if has_admin_key(session):
            return
        _, secret = create_key(session, CreateKey(role="admin", name="first-start admin"), now=utc_now())
    click.echo("\n  First start: an admin API key was created. It is shown only now:\n", err=True)
    click.echo(f"  POINTS_ADMIN_KEY={secret}\n", err=True)


def _metrics_dir() -> None:
    """gunicorn workers share metrics through files; start each server with an empty folder."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        path = tempfile.mkdtemp(prefix="points-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    for leftover in Path(path).glob("*.db"):
        leftover.unlink()


def _gunicorn_argv(bind: str, *extra: str) -> list[str]:
    gunicorn = shutil.which("gunicorn") or str(Path(sys.executable).with_name("gunicorn"))
    return [
        gunicorn,
        "-c",
        "python:points_service.gunicorn_conf",
        "--bind",
        bind,
        *extra,
        "points_service.wsgi:app",
    ]


@contextlib.contextmanager
def _sessions(url: str) -> Iterator[Any]:
    """Sessions for one command; the engine's connections are closed when it ends."""
    from .persistence.engine import make_engine, make_sessionmaker

    engine = make_engine(url)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


@contextlib.contextmanager
def _runtime(settings: Settings) -> Iterator[tuple[Any, Any]]:
    """Sessions and the PII keys for one command; the engine is closed when it ends."""
    from .persistence.pii import PiiKeys

    with _sessions(settings.database_url) as sessions:
        yield sessions, PiiKeys.from_settings(settings.encryption_keys, settings.index_key)


@main.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", envvar="PORT", default=8000, show_default=True, type=int)
def run(host: str, port: int) -> None:
    """Quick start: migrate, print an admin key on first start, serve on HOST:PORT and run the
    scheduler beside it; Ctrl-C stops both."""
    settings = _settings()
    upgrade_database(settings.database_url)
    _ensure_admin_key(settings)
    click.echo(
        f"serving on http://{host}:{port} (database {make_url(settings.database_url).render_as_string()})",
        err=True,
    )
    _metrics_dir()
    processes = [
        subprocess.Popen(
            _gunicorn_argv(f"{host}:{port}", "--workers", os.environ.get("POINTS_WEB_WORKERS", "2"))
        ),
        subprocess.Popen([sys.executable, "-m", "points_service", "scheduler", "run"]),
    ]

    def stop(*_: object) -> None:
        for process in processes:
            if process.poll() is None:
                process.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    codes = [p.returncode for p in processes]
    if any(c not in (0, -signal.SIGTERM, -signal.SIGINT) for c in codes):
        raise SystemExit(1)


@main.command("serve")
def serve() -> None:
    """Production entry point: migrate, then exec gunicorn (settings from gunicorn_conf)."""
    upgrade_database(_settings().database_url)
    _metrics_dir()
    port = os.environ.get("PORT", "8000")
    argv = _gunicorn_argv(f"0.0.0.0:{port}")
    os.execv(argv[0], argv)


# -- the scheduler and its jobs -------------------------------------------------------------------


@main.group()
def scheduler() -> None:
    """The scheduler process (one per deployment; never inside web workers)."""


@scheduler.command("run")
def scheduler_run() -> None:
    """Run the scheduled sweeps in Asia/Shanghai until stopped."""
    from .logs import configure_logging
    from .scheduler import build_scheduler

    settings = _settings()
    configure_logging(settings.log_level)
    # APScheduler narrates every run at INFO; our own job lines say what each sweep did
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    with _runtime(settings) as (sessions, pii):
        click.echo("scheduler running (Asia/Shanghai); Ctrl-C stops it", err=True)
        scheduler = build_scheduler(settings, sessions, pii)
        # graceful: a running sweep finishes its transaction before the process exits
        signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=True))
        with contextlib.suppress(KeyboardInterrupt, SystemExit):
            scheduler.start()


@main.group()
def jobs() -> None:
    """Run a scheduled sweep by hand."""


@jobs.command("run")
@click.argument(
    "name",
    type=click.Choice(
        ["announce-transitions", "roll-over-year", "close-appeal-windows", "dispatch-webhooks", "reconcile"]
    ),
)
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="the legal day to sweep up to (default: today in Asia/Shanghai); never after today",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="run the sweep and roll it back: what it would do (may look ahead of today)",
)
def jobs_run(name: str, today, dry_run: bool) -> None:
    """Run one sweep now, exactly as the scheduler would (idempotent: a rerun changes nothing)."""
    import json

    from .clock import utc_now
    from .services.sweeps import FutureDay, run_job

    settings = _settings()
    try:
        with _runtime(settings) as (sessions, pii):
            result = run_job(
                sessions,
                name,
                settings=settings,
                pii=pii,
                now=utc_now(),
                today=today.date() if today else None,
                dry_run=dry_run,
            )
    except FutureDay as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(result, default=str))


# -- contract -------------------------------------------------------------------------------------


@main.group()
def openapi() -> None:
    """The OpenAPI document generated from the code."""


def spec_dict() -> dict:
    from . import create_app

    app = create_app(Settings(database_url="sqlite://"))
    return app.extensions["points_service.api"].spec.to_dict()


@openapi.command("write")
@click.argument("path", type=click.Path(dir_okay=False, writable=True), default="openapi.yaml")
def openapi_write(path: str) -> None:
    """Write the OpenAPI document (committed as openapi.yaml; a test fails when it drifts)."""
    import yaml

    Path(path).write_text(yaml.safe_dump(spec_dict(), sort_keys=False, allow_unicode=True), "utf-8")
    click.echo(f"wrote {path}", err=True)


from .cli_bulk import demo, import_  # noqa: E402

main.add_command(import_, "import")
main.add_command(demo)
