from __future__ import annotations

import pytest
from factories import Api, make_key
from webhook_receivers import dispatch, local, receivers

__all__ = ["dispatch", "local", "receivers"]


@pytest.fixture
def admin_key(session) -> str:
    return make_key(session, "admin")


@pytest.fixture
def admin(client, admin_key) -> Api:
    return Api(client, admin_key)


@pytest.fixture
def inspector(client, session) -> Api:
    return Api(client, make_key(session, "inspector"))
