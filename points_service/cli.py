"""`points-service`: every operator command.

A mistake the operator can fix (a bad setting, a database never migrated or unreachable, a port in
use, the wrong keys) is answered with a line or two that say what is wrong and what to do, and a
non-zero exit; tracebacks are left for the service's own faults.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from .settings import DEFAULT_DATABASE_URL, Settings, SettingsError, project_root


def _refuse(*lines: str) -> NoReturn:
    for line in lines:
        click.echo(f"Error: {line}", err=True)
    raise SystemExit(1)


def _settings() -> Settings:
    """Every setting, checked before the command does anything (one line per bad one)."""
    try:
        return Settings.from_env()
    except SettingsError as exc:
        _refuse(*(f"{name}: {problem}" for name, problem in exc.problems))


def _command() -> str:
    """How the operator can call this program again: its name if that is on PATH, else the path used."""
    used = sys.argv[0]
    on_path = shutil.which("points-service")
    if Path(used).name != "points-service" or (on_path and Path(on_path).resolve() == Path(used).resolve()):
        return "points-service"
    return used


def describe_database(url: str) -> str:
    """The database as a person would name it: the file of an SQLite URL, or the URL without its password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            return "an in-memory SQLite database"
        return str(Path(parsed.database).resolve())
    return parsed.render_as_string(hide_password=True)


def migrations_dir() -> Path:
    """migrations/ of the project: beside the package in a checkout, the working directory in the image."""
    candidate = project_root() / "migrations"
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


def _migrate(url: str) -> None:
    """`upgrade_database` for a command: a refused migration is one line, not a traceback."""
    try:
        upgrade_database(url)
    except RuntimeError as exc:  # the migration lock is held by another deploy
        _refuse(f"cannot migrate {describe_database(url)}: {exc}")


def schema_revision(url: str) -> tuple[str | None, str]:
    """(the database's revision or None when it has none, the newest revision of this version)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from .persistence.engine import make_engine

    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision(), head
    finally:
        engine.dispose()


def _require_schema(url: str, *, newest: bool = True) -> None:
    """Stop with what to do when the database does not exist, was never migrated or is behind.

    An SQLite file that does not exist is not created: connecting would leave an empty one behind.
    """
    name = describe_database(url)
    parsed = make_url(url)
    upgrade = f"`{_command()} db upgrade`"
    on_disk = parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")
    if on_disk and not Path(parsed.database).is_file():
        _refuse(f"there is no database at {name}: {upgrade} creates it (or set POINTS_DATABASE_URL)")
    current, head = schema_revision(url)
    if current is None:
        _refuse(f"the database {name} is empty (never migrated): run {upgrade}")
    if newest and current != head:
        _refuse(f"the database {name} is at revision {current}; this version needs {head}: run {upgrade}")


class _Main(click.Group):
    """Database connection failures are the environment's, not a bug: say so in one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OperationalError as exc:
            reason = str(exc.orig or exc).strip().splitlines()[0]
            _refuse(f"database error: {reason} (the database is POINTS_DATABASE_URL)")


@click.group(
    cls=_Main,
    help="points_service: demerit points and payment eligibility (医保支付资格管理).\n\n"
    f"Settings come from the environment (see the README). The database is POINTS_DATABASE_URL; by "
    f"default the SQLite file {describe_database(DEFAULT_DATABASE_URL)}, whatever folder a command is "
    "started from.",
)
@click.version_option(package_name="points-service", prog_name="points-service")
def main() -> None:
    pass


# -- database ------------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Schema migrations (the only way the schema is created)."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database at POINTS_DATABASE_URL to the newest revision (creating an SQLite file)."""
    settings = _settings()
    _migrate(settings.database_url)
    click.echo(f"the database {describe_database(settings.database_url)} is at the newest revision")


@db.command("check")
def db_check() -> None:
    """Fail if the models and the migrated schema differ."""
    from alembic import command

    url = _settings().database_url
    _require_schema(url, newest=False)
    command.check(alembic_config(url))


@db.command("current")
def db_current() -> None:
    """Print the database's revision."""
    url = _settings().database_url
    _require_schema(url, newest=False)
    current, head = schema_revision(url)
    if current == head:
        click.echo(f"{current} (head): the database {describe_database(url)} is up to date")
    else:
        click.echo(f"{current}: the database {describe_database(url)} is behind {head}; run `db upgrade`")


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
    """Re-encrypt every stored secret under the active (first) key of POINTS_ENCRYPTION_KEYS, and
    rebuild the national-ID index when POINTS_INDEX_KEY has changed.

    \b
    Encryption key: put the new key first and keep the old one after it, run this, then drop the
    old key.
    Index key: set the new POINTS_INDEX_KEY and the old one as POINTS_INDEX_KEY_PREVIOUS for every
    process (restart them), run this, then remove POINTS_INDEX_KEY_PREVIOUS. Until it has finished,
    look-ups try both keys, so a national ID already registered is still found.

    Safe to interrupt and re-run: rows already under the active keys are skipped.
    """
    from .clock import utc_now
    from .services.pii_rotation import rotate_encryption

    settings = _settings()
    with _runtime(settings, quiet=True) as (sessions, keys):
        counts = rotate_encryption(sessions, keys, now=utc_now(), batch=batch)
    click.echo(
        f"re-encrypted {counts['practitioners']} national IDs and {counts['webhooks']} webhook secrets "
        f"under key {keys.active_key_id}"
    )
    if keys.previous_index_key is not None:
        click.echo(
            f"rebuilt {counts['indexes']} national-ID index entries under POINTS_INDEX_KEY, which is now the "
            "recorded key; remove POINTS_INDEX_KEY_PREVIOUS and restart"
        )


# -- serving --------------------------------------------------------------------------------------


def _ensure_admin_key(sessions: Any) -> None:
    from .clock import utc_now
    from .persistence.engine import transaction
    from .services.keys import CreateKey, create_key, has_admin_key

    with transaction(sessions, write=True) as session:
        if has_admin_key(session):
            secret = None
        else:
            _, secret = create_key(session, CreateKey(role="admin", name="first-start admin"), now=utc_now())
    if secret is None:
        click.echo(
            "An admin API key exists (it was shown once, on the first start). For another: "
            f"{_command()} keys create --role admin --name YOUR-NAME",
            err=True,
        )
        return
    click.echo("\n  First start: an admin API key was created. It is shown only now:\n", err=True)
    click.echo(f"  POINTS_ADMIN_KEY={secret}\n", err=True)


def _require_free_port(host: str, port: int, *, how: str) -> None:
    """Stop before anything starts when the port is taken, rather than after the server gave up."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # as gunicorn binds: a port left in TIME_WAIT by a stopped server is free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            _refuse(f"PORT {port} on {host} is not free ({exc.strerror}); {how}")


def _require_keys(settings: Settings, *, allowed: bool, command: str) -> None:
    """The public development keys: refused by `serve` unless allowed, always said out loud."""
    dev = settings.development_keys()
    if not dev:
        return
    names = " and ".join(dev)
    if not allowed:
        _refuse(
            f"{command} refuses the public development keys: set {names} (`{_command()} pii generate-key` "
            "makes one), or POINTS_ALLOW_DEV_KEYS=1 for a trial that keeps no real data"
        )
    click.echo(f"Warning: {names} are the public development keys: keep no real data here", err=True)


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
    """Sessions for one command on a migrated database; the engine's connections are closed when it ends."""
    from .persistence.engine import make_engine, make_sessionmaker

    _require_schema(url)
    engine = make_engine(url)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


def _checked_keys(settings: Settings, sessions: Any, *, quiet: bool = False) -> Any:
    """The PII keys, once the index key is known to be the one the stored national IDs are
    indexed with (recorded on first use; see `pii rotate`)."""
    from .clock import utc_now
    from .services.pii_rotation import IndexKeyRefused, check_index_key

    keys = settings.pii_keys()
    try:
        state = check_index_key(sessions, keys, now=utc_now())
    except IndexKeyRefused as exc:
        _refuse(str(exc))
    note = state.note(keys)
    if note and not quiet:
        click.echo(f"Note: {note}", err=True)
    return keys


@contextlib.contextmanager
def _runtime(settings: Settings, *, quiet: bool = False) -> Iterator[tuple[Any, Any]]:
    """Sessions and the checked PII keys, for a command that touches personal data."""
    with _sessions(settings.database_url) as sessions:
        yield sessions, _checked_keys(settings, sessions, quiet=quiet)


@main.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="default: $PORT, else 8000")
def run(host: str, port: int | None) -> None:
    """Quick start: migrate, print an admin key on first start, serve on HOST:PORT and run the
    scheduler beside it; Ctrl-C stops both. The development keys are allowed (with a warning)."""
    settings = _settings()
    port = port or settings.port
    _require_free_port(host, port, how="stop what uses it, or choose another, e.g. PORT=8001 make run")
    _require_keys(settings, allowed=True, command="run")
    _migrate(settings.database_url)
    with _runtime(settings) as (sessions, _):
        _ensure_admin_key(sessions)
    database = describe_database(settings.database_url)
    click.echo(f"serving on http://{host}:{port} (database {database})", err=True)
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
    """Production entry point: check the settings and keys, migrate, then exec gunicorn (gunicorn_conf).

    Refuses the public development keys unless POINTS_ALLOW_DEV_KEYS=1.
    """
    settings = _settings()
    _require_keys(settings, allowed=settings.allow_dev_keys, command="serve")
    _require_free_port("0.0.0.0", settings.port, how="set PORT to a free port")
    _migrate(settings.database_url)
    with _runtime(settings):
        pass  # refuses an index key the database does not know
    argv = _gunicorn_argv(f"0.0.0.0:{settings.port}")
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
    with _runtime(settings) as (sessions, pii):
        configure_logging(settings.log_level)
        # APScheduler narrates every run at INFO; our own job lines say what each sweep did
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
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
