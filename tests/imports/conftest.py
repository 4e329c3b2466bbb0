"""The imports' tests run on a database of their own per module, committed for real: an import is
one transaction of its own (COPY on PostgreSQL), so it cannot run inside the suite's outer
transaction. These fixtures give each module that database, the CLI on it and the HTTP API on it."""

from __future__ import annotations

import uuid

import pytest
from click.testing import CliRunner
from databases import fresh_database_url
from factories import Api, make_key

from points_service import create_app
from points_service.cli import main
from points_service.persistence.engine import make_engine, make_sessionmaker
from points_service.persistence.schema import upgrade_database
from points_service.settings import Settings


@pytest.fixture(scope="module")
def url(request, tmp_path_factory) -> str:
    url = fresh_database_url(tmp_path_factory, request.module.__name__.removeprefix("test_"))
    upgrade_database(url)
    return url


@pytest.fixture(scope="module")
def engine(url):
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def sessions(engine):
    return make_sessionmaker(engine)


@pytest.fixture
def cli(url):
    """`points-service …` on the module's database: cli("import", "violations", path)."""
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, list(args), env={"POINTS_DATABASE_URL": url}, catch_exceptions=False)

    return run


@pytest.fixture
def api(url, engine):
    """The HTTP API on the module's database: api(role) is a client with a key of that role."""
    app = create_app(Settings(database_url=url, rate_limit=""), engine=engine)
    client = app.test_client()

    def as_role(role: str) -> Api:
        with app.app_context():
            return Api(client, make_key(app.extensions["points_service"].sessions, role))

    return as_role


@pytest.fixture
def tag() -> str:
    """A fresh prefix, so that the codes and case_refs of one test meet no other's."""
    return uuid.uuid4().hex[:8].upper()
