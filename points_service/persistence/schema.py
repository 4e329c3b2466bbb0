"""The schema is made by the migrations (alembic) alone: where they are, bringing a database to
the newest revision, and where a database stands. The operator's commands, the tests and the
benchmark all migrate through here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from .engine import make_engine


class MigrationsNotFound(RuntimeError):
    """Neither beside the package nor in the working folder: nothing can be migrated or checked."""


def project_root() -> Path:
    """The folder holding migrations/: the checkout the package runs from, else the working
    directory (the image's /app, where the package is installed elsewhere)."""
    checkout = Path(__file__).resolve().parent.parent.parent
    for candidate in (checkout, Path.cwd()):
        if (candidate / "migrations" / "env.py").exists():
            return candidate
    return Path.cwd()


def migrations_dir() -> Path:
    """migrations/ of the project: beside the package in a checkout, the working directory in the image."""
    candidate = project_root() / "migrations"
    if (candidate / "env.py").exists():
        return candidate
    raise MigrationsNotFound("cannot find the migrations folder (run from the project or image root)")


def alembic_config(database_url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("path_separator", "os")
    config.attributes["database_url"] = database_url
    return config


def upgrade_database(url: str) -> None:
    """Migrate to the newest revision; an SQLite file (and its folder) is created if need be."""
    from alembic import command

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")


def schema_revision(url: str) -> tuple[str | None, str]:
    """(the database's revision or None when it has none, the newest revision of this version)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision(), head
    finally:
        engine.dispose()
