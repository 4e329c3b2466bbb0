"""Which database the suite runs on, and how to make an empty one."""

from __future__ import annotations

import os

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

TEST_URL = os.environ.get("POINTS_TEST_DATABASE_URL")


def fresh_database_url(tmp_path_factory, label: str) -> str:
    """An empty database: a new SQLite file, or a new PostgreSQL database beside the test one."""
    if not TEST_URL:
        return f"sqlite:///{tmp_path_factory.mktemp(label) / 'points.db'}"
    base = make_url(TEST_URL)
    name = f"{base.database}_{label}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)
