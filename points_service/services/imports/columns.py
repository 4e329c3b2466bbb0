"""The checks of a CSV column's value, in the words the API's schemas use for the same field
(rules.identifiers), so that a value the API refuses the import refuses alike: `line N: field: …`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from ...rules.identifiers import code_problem, name_problem, parse_legal_date, region_code_problem
from .files import RowErrors

NAME_LENGTH = 200  # as the API's Name field and the column


def check(errors: RowErrors, line: int, column: str, problem: str | None) -> bool:
    """Record `problem` with the column it is about; whether there was none."""
    if problem is None:
        return True
    errors.add(line, f"{column}: {problem}")
    return False


def check_code(errors: RowErrors, line: int, column: str, value: str) -> bool:
    return check(errors, line, column, code_problem(value))


def check_name(errors: RowErrors, line: int, value: str) -> bool:
    if len(value) > NAME_LENGTH:
        return check(errors, line, "name", f"at most {NAME_LENGTH} characters, got {len(value)}")
    return check(errors, line, "name", name_problem(value))


def check_region_code(errors: RowErrors, line: int, value: str) -> bool:
    return check(errors, line, "region_code", region_code_problem(value))


def legal_date(errors: RowErrors, line: int, column: str, value: str) -> dt.date | None:
    """The date, or None with the problem recorded."""
    parsed = parse_legal_date(value)
    if isinstance(parsed, str):
        check(errors, line, column, parsed)
        return None
    return parsed


def differences(stored: Sequence[Any], given: Sequence[Any], names: Sequence[str]) -> str:
    """The names of the fields in which a stored row and a row of the file differ."""
    return ", ".join(name for name, a, b in zip(names, stored, given, strict=True) if a != b)
