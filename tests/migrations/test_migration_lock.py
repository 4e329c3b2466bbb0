"""Migrations refuse to run twice concurrently: an advisory lock on PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from databases import fresh_database_url
from sqlalchemy import Engine, create_engine, inspect, text

from points_service.persistence.engine import lock_key
from points_service.persistence.schema import alembic_config

pytestmark = pytest.mark.postgresql

LOCK = lock_key("points_service:migrations")


@pytest.fixture
def lock_db(tmp_path_factory):
    """An empty database of its own, and an engine for the connection that plays the other deploy."""
    url = fresh_database_url(tmp_path_factory, "lock")
    engine = create_engine(url)
    yield url, engine
    engine.dispose()


def _config(url: str, wait: float, *, engine=None):
    config = alembic_config(url)
    config.attributes["lock_wait_seconds"] = wait
    if engine is not None:
        # env.py does not dispose an engine it made when the run fails, which would leak a pooled
        # connection into the next test; an engine of ours is disposed by the fixture
        config.attributes["connection"] = engine
    return config


def _revision(engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()


def _head(url: str) -> str:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def test_a_migration_refuses_to_run_while_another_holds_the_lock_and_runs_once_it_is_released(lock_db):
    url, engine = lock_db
    with engine.connect() as other:
        other.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK})
        other.commit()
        with pytest.raises(RuntimeError, match="refusing") as refused:
            command.upgrade(_config(url, 1, engine=engine), "head")
        assert f"advisory lock {LOCK}" in str(refused.value)
        assert _revision(engine) is None  # nothing was migrated
        assert other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK}).scalar() is True
        other.commit()

    command.upgrade(_config(url, 1), "head")
    assert _revision(engine) == _head(url)

    # the lock is given back: another run may take it (and finds nothing to do)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK}).scalar() is True
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK})
    command.upgrade(_config(url, 1), "head")
    assert _revision(engine) == _head(url)


def test_a_migration_waits_for_a_lock_released_within_its_wait(lock_db):
    url, engine = lock_db
    other = engine.connect()
    other.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK})
    other.commit()

    def release() -> None:
        other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK})
        other.commit()

    timer = threading.Timer(0.5, release)
    timer.start()
    try:
        command.upgrade(_config(url, 10), "head")
    finally:
        timer.join()
        other.close()
    assert _revision(engine) == _head(url)


def _dispose_engines_left_in(excinfo, keep) -> None:
    """Close what the refused run left behind (the engine env.py made), so nothing leaks onward."""
    tb = excinfo.tb if excinfo is not None else None
    while tb is not None:
        candidate = tb.tb_frame.f_locals.get("engine")
        if isinstance(candidate, Engine) and candidate is not keep:
            candidate.dispose()
        tb = tb.tb_next


def test_a_refused_migration_leaves_no_connection_open(lock_db):
    url, engine = lock_db
    refused = None
    with engine.connect() as other:
        other.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK})
        other.commit()
        try:
            with pytest.raises(RuntimeError, match="refusing") as refused:
                command.upgrade(_config(url, 0.2), "head")
            deadline = time.monotonic() + 1  # a closed backend leaves pg_stat_activity a moment later
            while True:
                still_open = other.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).scalar()
                other.commit()  # a fresh snapshot of pg_stat_activity each time
                if still_open == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert still_open == 0
        finally:
            _dispose_engines_left_in(refused, engine)
            other.rollback()
            other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK})
            other.commit()
