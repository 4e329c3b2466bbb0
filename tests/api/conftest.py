from __future__ import annotations

from dataclasses import replace

import pytest
from factories import Api, joined, make_key
from webhook_receivers import dispatch, local, receivers

from points_service import create_app

__all__ = ["dispatch", "local", "receivers"]


@pytest.fixture
def make_app(settings, engine, connection):
    """An app of its own (other settings), its requests joined to the test's outer transaction."""

    def build(**changes):
        app = create_app(replace(settings, **changes), engine=engine)
        app.extensions["points_service"] = joined(app.extensions["points_service"], connection)
        return app

    return build


@pytest.fixture
def admin_key(session) -> str:
    return make_key(session, "admin")


@pytest.fixture
def admin(client, admin_key) -> Api:
    return Api(client, admin_key)


@pytest.fixture
def inspector(client, session) -> Api:
    return Api(client, make_key(session, "inspector"))
