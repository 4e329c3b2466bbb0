"""Alembic environment: the schema is only ever created by these migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import time

from alembic import context
from sqlalchemy import Connection, Engine, text

from points_service.persistence.engine import lock_key, make_engine
from points_service.persistence.models import Base

config = context.config
target_metadata = Base.metadata
MIGRATION_LOCK = lock_key("points_service:migrations")


def _url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from points_service.settings import Settings

    return Settings.from_env().database_url


def _take_migration_lock(connection: Connection) -> None:
    """Wait a bounded time for another migration to finish, then refuse to run alongside it."""
    default = os.environ.get("POINTS_MIGRATION_LOCK_WAIT", "120")
    wait = float(config.attributes.get("lock_wait_seconds", default))
    deadline = time.monotonic() + wait
    while not connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": MIGRATION_LOCK}).scalar():
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"another migration holds the migration lock (advisory lock {MIGRATION_LOCK}); "
                f"refusing to run concurrently after waiting {wait:.0f} s"
            )
        time.sleep(0.2)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things
        compare_type=True,
        compare_server_default=True,
        transaction_per_migration=True,
    )


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if isinstance(given, Connection):  # a caller that manages its own transaction
        _configure(given)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = given if isinstance(given, Engine) else make_engine(_url())
    try:
        with engine.connect() as connection:
            locked = False
            try:
                if connection.dialect.name == "postgresql":
                    # two deploys must not migrate at once; DDL must not wait forever behind traffic
                    _take_migration_lock(connection)
                    locked = True
                    connection.execute(text("SET lock_timeout = '10s'"))
                    connection.execute(text("SET statement_timeout = '10min'"))
                    connection.commit()
                _configure(connection)
                with context.begin_transaction():
                    context.run_migrations()
            finally:
                if locked:
                    connection.rollback()
                    connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
                    connection.commit()
    finally:
        # a refused or failed migration must not leave its connection open either
        if not isinstance(given, Engine):
            engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
