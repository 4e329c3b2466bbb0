"""What the command modules share: the one-line refusal, the settings, the database's state and
sessions, and the checked PII keys.

A mistake the operator can fix (a bad setting, a database never migrated or unreachable, the wrong
keys) is answered with a line or two that say what is wrong and what to do, and a non-zero exit;
tracebacks are left for the service's own faults.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import click
from sqlalchemy.engine import make_url

from ..persistence.schema import schema_revision, upgrade_database
from ..settings import Settings, SettingsError


def refuse(*lines: str) -> NoReturn:
    for line in lines:
        click.echo(f"Error: {line}", err=True)
    raise SystemExit(1)


def load_settings() -> Settings:
    """Every setting, checked before the command does anything (one line per bad one)."""
    try:
        return Settings.from_env()
    except SettingsError as exc:
        refuse(*(f"{name}: {problem}" for name, problem in exc.problems))


def program() -> str:
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


def migrate(url: str) -> None:
    """`upgrade_database` for a command: a refused migration is one line, not a traceback."""
    try:
        upgrade_database(url)
    except RuntimeError as exc:  # the migration lock is held by another deploy
        refuse(f"cannot migrate {describe_database(url)}: {exc}")


def require_schema(url: str, *, newest: bool = True) -> None:
    """Stop with what to do when the database does not exist, was never migrated or is behind.

    An SQLite file that does not exist is not created: connecting would leave an empty one behind.
    """
    name = describe_database(url)
    parsed = make_url(url)
    upgrade = f"`{program()} db upgrade`"
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if file not in (None, "", ":memory:") and not Path(file).is_file():
        refuse(f"there is no database at {name}: {upgrade} creates it (or set POINTS_DATABASE_URL)")
    current, head = schema_revision(url)
    if current is None:
        refuse(f"the database {name} is empty (never migrated): run {upgrade}")
    if newest and current != head:
        refuse(f"the database {name} is at revision {current}; this version needs {head}: run {upgrade}")


@contextlib.contextmanager
def open_sessions(url: str) -> Iterator[Any]:
    """Sessions for one command on a migrated database; the engine's connections are closed when it ends."""
    from ..persistence.engine import make_engine, make_sessionmaker

    require_schema(url)
    engine = make_engine(url)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


def checked_keys(settings: Settings, sessions: Any, *, quiet: bool = False) -> Any:
    """The PII keys, once the index key is known to be the one the stored national IDs are
    indexed with (recorded on first use; see `pii rotate`)."""
    from ..clock import utc_now
    from ..services.pii_rotation import IndexKeyRefused, check_index_key

    keys = settings.pii_keys()
    try:
        state = check_index_key(sessions, keys, now=utc_now())
    except IndexKeyRefused as exc:
        refuse(str(exc))
    note = state.note(keys)
    if note and not quiet:
        click.echo(f"Note: {note}", err=True)
    return keys


@contextlib.contextmanager
def runtime(settings: Settings, *, quiet: bool = False) -> Iterator[tuple[Any, Any]]:
    """Sessions and the checked PII keys, for a command that touches personal data."""
    with open_sessions(settings.database_url) as sessions:
        yield sessions, checked_keys(settings, sessions, quiet=quiet)
