"""The rules package stays pure: no web or database framework, no clock, no I/O (rules/__init__.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import points_service.rules

RULES_DIR = Path(points_service.rules.__file__).parent
RULE_FILES = sorted(RULES_DIR.rglob("*.py"))

FORBIDDEN_PACKAGES = {"flask", "sqlalchemy", "marshmallow"}
# a call whose dotted name ends with one of these reads the clock
CLOCK_CALLS = {("datetime", "now"), ("date", "today"), ("datetime", "utcnow"), ("time", "time")}
OPEN_CALLS = {("open",), ("io", "open"), ("os", "open"), ("codecs", "open")}


def dotted(node: ast.expr) -> tuple[str, ...]:
    """('dt', 'datetime', 'now') for dt.datetime.now; () for anything that is not a plain name chain."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return tuple(reversed(parts))
    return ()


def violations(source: str, filename: str = "<source>") -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FORBIDDEN_PACKAGES:
                    found.append(f"{filename}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and node.module.split(".")[0] in FORBIDDEN_PACKAGES:
                found.append(f"{filename}:{node.lineno}: from {node.module} import")
        elif isinstance(node, ast.Call):
            name = dotted(node.func)
            if name[-2:] in CLOCK_CALLS or name in OPEN_CALLS:
                found.append(f"{filename}:{node.lineno}: call {'.'.join(name)}()")
    return found


def test_the_boundary_check_covers_every_rules_module():
    names = {p.relative_to(RULES_DIR).as_posix() for p in RULE_FILES}
    assert {"__init__.py", "calendar.py", "policy.py", "standing.py"} <= names


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.relative_to(RULES_DIR).as_posix())
def test_rules_modules_use_no_framework_no_clock_and_no_io(path):
    assert violations(path.read_text("utf-8"), path.name) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import flask", "import flask"),
        ("import sqlalchemy.orm as orm", "import sqlalchemy.orm"),
        ("from marshmallow import fields", "from marshmallow import"),
        ("from flask.json import dumps", "from flask.json import"),
        ("import datetime as dt\ndt.datetime.now()", "call dt.datetime.now()"),
        ("from datetime import datetime\ndatetime.now(tz=None)", "call datetime.now()"),
        ("from datetime import datetime\ndatetime.utcnow()", "call datetime.utcnow()"),
        ("import datetime\ndatetime.date.today()", "call datetime.date.today()"),
        ("from datetime import date\ndate.today()", "call date.today()"),
        ("import time\ntime.time()", "call time.time()"),
        ("open('x.toml')", "call open()"),
        ("import io\nio.open('x')", "call io.open()"),
    ],
)
def test_the_boundary_check_catches_each_forbidden_construct(source, expected):
    found = violations(source)
    assert len(found) == 1 and found[0].endswith(expected), found


@pytest.mark.parametrize(
    "source",
    [
        "import datetime as dt\ndt.date(2025, 1, 1)",
        "from .calendar import add_months",
        "from dateutil.relativedelta import relativedelta",
        "text.read_text('utf-8')",
        "import time\ntime.monotonic_ns",
    ],
)
def test_the_boundary_check_lets_pure_code_through(source):
    assert violations(source) == []
