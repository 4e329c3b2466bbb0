"""Input fields with the service's own notion of a well-formed value (rules.identifiers): a legal
date, an identifier, a name, free text, a region code. Every input schema uses these, so the same
value is refused the same way everywhere, with a 422 naming the field."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from marshmallow import ValidationError, fields, validate

from ...rules.identifiers import (
    EARLIEST_DATE,
    LATEST_DATE,
    identifier_problem,
    name_problem,
    parse_legal_date,
    region_code_problem,
    text_problem,
)

# a list, not validate.And: apispec renders each validator of a list (minLength, maxLength, pattern)
# and nothing of an And, which would leave openapi.yaml allowing any string
CODE = [validate.Length(min=1, max=64), validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


def _check(problem: Callable[[str], str | None]) -> Callable[[str], None]:
    def check(value: str) -> None:
        message = problem(value)
        if message is not None:
            raise ValidationError(message)

    return check


class LegalDate(fields.Date):
    """A date written exactly YYYY-MM-DD (not `20261120`), from 1990-01-01 to 2999-12-31."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = kwargs.pop("metadata", {})
        description = metadata.get("description")
        bounds = f"{EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()}"
        metadata["description"] = f"{description}; {bounds}" if description else bounds
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dt.date:
        if not isinstance(value, str):
            raise ValidationError("a date written YYYY-MM-DD")
        parsed = parse_legal_date(value)
        if isinstance(parsed, str):
            raise ValidationError(parsed)
        return parsed


def Identifier(*, max_length: int, **kwargs: Any) -> fields.String:  # noqa: N802 (a field factory)
    """Printable, not blank, no surrounding spaces (a case number, an evidence reference)."""
    return fields.String(
        validate=[validate.Length(min=1, max=max_length), _check(identifier_problem)], **kwargs
    )


def Name(*, max_length: int = 200, **kwargs: Any) -> fields.String:  # noqa: N802
    """A person's or an institution's name: printable and not blank."""
    return fields.String(validate=[validate.Length(min=1, max=max_length), _check(name_problem)], **kwargs)


def Text(*, max_length: int, required_text: bool = False, **kwargs: Any) -> fields.String:  # noqa: N802
    """Free text; `required_text`: must say something (not only spaces)."""
    checks: list[Callable[[str], Any]] = [
        validate.Length(min=1 if required_text else 0, max=max_length),
        _check(text_problem),
    ]
    if required_text:
        checks.append(_check(lambda v: "must not be blank" if not v.strip() else None))
    return fields.String(validate=checks, **kwargs)


def RegionCode(**kwargs: Any) -> fields.String:  # noqa: N802
    """Rule 3: six digits, the first two a province of GB/T 2260."""
    return fields.String(
        validate=[
            validate.Regexp(r"^\d{6}$", error="a 6-digit region code (行政区划代码)"),
            _check(region_code_problem),
        ],
        **kwargs,
    )


class Instant(fields.AwareDateTime):
    """An RFC 3339 instant with its offset, inside the same years as a legal date."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dt.datetime:
        instant = super()._deserialize(value, attr, data, **kwargs)
        # checked before any conversion to UTC: 9999-12-31T23:59-14:00 would overflow it
        if not EARLIEST_DATE <= instant.date() <= LATEST_DATE:
            raise ValidationError(f"an instant from {EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()}")
        return instant
