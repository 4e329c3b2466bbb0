from __future__ import annotations

import pytest
from databases import fresh_database_url

from points_service.persistence.engine import make_engine
from points_service.persistence.schema import migrations_dir


@pytest.fixture
def alembic_config():
    return {"script_location": str(migrations_dir()), "path_separator": "os"}


@pytest.fixture
def alembic_engine(tmp_path_factory):
    """A fresh, empty database per test: pytest-alembic walks it from base to head and back."""
    engine = make_engine(fresh_database_url(tmp_path_factory, "migrations"))
    yield engine
    engine.dispose()
