"""`points-service db`: the schema's migrations."""

from __future__ import annotations

import click

from ..persistence.schema import alembic_config, schema_revision
from ._runtime import describe_database, load_settings, migrate, require_schema


@click.group()
def db() -> None:
    """Schema migrations (the only way the schema is created)."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database at POINTS_DATABASE_URL to the newest revision (creating an SQLite file)."""
    settings = load_settings()
    migrate(settings.database_url)
    click.echo(f"the database {describe_database(settings.database_url)} is at the newest revision")


@db.command("check")
def db_check() -> None:
    """Fail if the models and the migrated schema differ."""
    from alembic import command

    url = load_settings().database_url
    require_schema(url, newest=False)
    command.check(alembic_config(url))


@db.command("current")
def db_current() -> None:
    """Print the database's revision."""
    url = load_settings().database_url
    require_schema(url, newest=False)
    current, head = schema_revision(url)
    if current == head:
        click.echo(f"{current} (head): the database {describe_database(url)} is up to date")
    else:
        click.echo(f"{current}: the database {describe_database(url)} is behind {head}; run `db upgrade`")
