"""The code keeps a shape a newcomer can change (docs/architecture.md): short functions, modules
of one role, and services that write through the ORM's unit of work only. Imports (layers, no
cycles, the API speaking to services only) are held by import-linter in `make lint`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import points_service

PACKAGE = Path(points_service.__file__).parent
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
MAX_RULE_FUNCTION_LINES = 100  # a rule may read as the regulation does, in one piece


def _name(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_module_is_longer_than_600_lines(path):
    assert len(path.read_text("utf-8").splitlines()) <= MAX_MODULE_LINES


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_function_is_longer_than_80_lines_or_100_in_the_rules(path):
    limit = MAX_RULE_FUNCTION_LINES if _name(path).startswith("rules/") else MAX_FUNCTION_LINES
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(path.read_text("utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > limit
    ]
    assert not long


@pytest.mark.parametrize("path", [p for p in MODULES if _name(p).startswith("services/")], ids=_name)
def test_services_write_through_the_unit_of_work_not_table_statements(path):
    assert "__table__" not in path.read_text("utf-8")


def test_the_shape_checks_see_the_whole_package():
    names = {_name(p) for p in MODULES}
    assert {"rules/standing.py", "services/state.py", "api/base.py", "cli/__init__.py"} <= names
