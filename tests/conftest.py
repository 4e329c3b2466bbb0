"""Fixtures: a database built by the migrations, one outer transaction per test, an app bound to it.

POINTS_TEST_DATABASE_URL unset -> SQLite; set to postgresql+psycopg://... -> the same suite on
PostgreSQL (tests marked `postgresql` run only there).
"""

from __future__ import annotations

import os
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).parent))

from databases import TEST_URL, fresh_database_url  # noqa: E402
from factories import Api, joined, make_key  # noqa: E402

# a developer's shell must not change test behaviour
for name in [n for n in os.environ if n.startswith("POINTS_") and n != "POINTS_TEST_DATABASE_URL"]:
    del os.environ[name]


def pytest_collection_modifyitems(config, items):
    if TEST_URL and make_url(TEST_URL).get_backend_name() == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs POINTS_TEST_DATABASE_URL pointing at PostgreSQL")
    for item in items:
        if "postgresql" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config):
    return f"database: {TEST_URL or 'SQLite (set POINTS_TEST_DATABASE_URL for PostgreSQL)'}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    return fresh_database_url(tmp_path_factory, "suite")


@pytest.fixture(scope="session")
def engine(database_url):
    from points_service.persistence.engine import make_engine
    from points_service.persistence.schema import upgrade_database

    upgrade_database(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def settings(database_url):
    from points_service.settings import Settings

    # the rate limit is tested on an app of its own; here it would only make fast tests flaky
    return Settings(database_url=database_url, rate_limit="")


@pytest.fixture
def connection(engine):
    conn = engine.connect()
    outer = conn.begin()
    yield conn
    outer.rollback()
    conn.close()


@pytest.fixture
def session(connection) -> Session:
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    yield session
    session.close()


@pytest.fixture(scope="session")
def base_app(settings, engine):
    from points_service import create_app

    return create_app(settings, engine=engine)


@pytest.fixture
def app(base_app, connection):
    """The app with every request's transaction joined to the test's outer transaction."""
    runtime = base_app.extensions["points_service"]
    # reads join it too (autocommit reads are tested on committed_app: test_read_path.py)
    base_app.extensions["points_service"] = joined(runtime, connection)
    yield base_app
    base_app.extensions["points_service"] = runtime


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def committed_app(base_app):
    """The app on the real engine: requests commit for real (concurrency tests); use unique codes."""
    return base_app


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def make_app(settings, engine, connection):
    """An app of its own (other settings), its requests joined to the test's outer transaction."""
    from points_service import create_app

    def build(**changes):
        app = create_app(replace(settings, **changes), engine=engine)
        app.extensions["points_service"] = joined(app.extensions["points_service"], connection)
        return app

    return build


# keys of each role, made in the test's transaction, and clients that send them


@pytest.fixture
def admin_key(session) -> str:
    return make_key(session, "admin")


@pytest.fixture
def admin(client, admin_key) -> Api:
    return Api(client, admin_key)


@pytest.fixture
def inspector(client, session) -> Api:
    return Api(client, make_key(session, "inspector"))


@pytest.fixture
def reviewer(client, session) -> Api:
    return Api(client, make_key(session, "reviewer"))
