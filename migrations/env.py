"""Alembic environment: the schema is only ever created by these migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

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
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # two deploys must not migrate at once; DDL must not wait forever behind traffic
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
            connection.execute(text("SET lock_timeout = '10s'"))
            connection.execute(text("SET statement_timeout = '10min'"))
            connection.commit()
        try:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if connection.dialect.name == "postgresql":
                connection.rollback()
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
                connection.commit()
    if not isinstance(given, Engine):
        engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
