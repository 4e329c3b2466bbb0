"""What the Makefile's housekeeping targets do to a checkout: run in a scratch folder, never here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

MAKEFILE = Path(__file__).resolve().parents[2] / "Makefile"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".pytest_cache").mkdir()
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "points.db").write_bytes(b"SQLite format 3\x00")
    return tmp_path


def _make(folder: Path, target: str) -> str:
    done = subprocess.run(
        ["make", "--no-print-directory", "-f", str(MAKEFILE), "-C", str(folder), target],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout + done.stderr


def test_make_clean_keeps_the_database_and_says_so(checkout):
    said = _make(checkout, "clean")
    assert not (checkout / ".venv").exists() and not (checkout / ".pytest_cache").exists()
    assert (checkout / "var" / "points.db").exists()
    assert "kept var/" in said and "make clean-data" in said


def test_make_clean_data_deletes_the_database_and_names_what_it_deleted(checkout):
    said = _make(checkout, "clean-data")
    assert not (checkout / "var").exists()
    assert "var/points.db" in said
    assert (checkout / ".venv").exists()
    assert "nothing to delete" in _make(checkout, "clean-data")


def test_make_run_allows_the_development_keys_and_says_so():
    planned = subprocess.run(
        ["make", "--no-print-directory", "-n", "-f", str(MAKEFILE), "-C", str(MAKEFILE.parent), "run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "echo" in planned and "make run: POINTS_ALLOW_DEV_KEYS=1" in planned
    assert "POINTS_ALLOW_DEV_KEYS=1 .venv/bin/points-service run" in planned
