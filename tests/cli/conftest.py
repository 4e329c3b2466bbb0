"""The operator's commands as a person meets them: click's CliRunner, the real settings loader
reading the environment each test gives, and real databases."""

from __future__ import annotations

import base64
import os
import sqlite3

import pytest
from click.testing import CliRunner, Result
from databases import fresh_database_url

from points_service.cli import main
from points_service.persistence.schema import upgrade_database

KEY_A = base64.b64encode(bytes([0xA1]) * 32).decode()
KEY_B = base64.b64encode(bytes([0xB2]) * 32).decode()
ENCRYPTION = f"k1:{base64.b64encode(bytes([0x11]) * 32).decode()}"


@pytest.fixture
def invoke():
    """Run `points-service ARGS` with exactly the POINTS_ variables given (and PORT)."""

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        clean = {name: None for name in os.environ if name.startswith("POINTS_") or name == "PORT"}
        return CliRunner().invoke(main, list(args), env={**clean, **(env or {})})

    return run


def answered(result: Result, *needles: str, most_lines: int = 3) -> str:
    """A mistake answered as promised: non-zero exit, a few lines, no traceback, naming each needle."""
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    text = result.output
    lines = [line for line in text.splitlines() if line.strip()]
    assert 1 <= len(lines) <= most_lines, text
    assert "Traceback" not in text
    for needle in needles:
        assert needle in text, (needle, text)
    return text


@pytest.fixture
def fresh(tmp_path_factory):
    """An empty database of the suite's kind (SQLite file, or PostgreSQL when the suite runs there)."""
    made = iter(range(1000))

    def make(label: str, *, migrated: bool = False) -> str:
        url = fresh_database_url(tmp_path_factory, f"cli_{label}_{next(made)}")
        if migrated:
            upgrade_database(url)
        elif url.startswith("sqlite:///"):
            sqlite3.connect(url.removeprefix("sqlite:///")).close()  # the file exists, with no tables
        return url

    return make
