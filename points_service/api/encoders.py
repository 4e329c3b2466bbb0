"""The three hot reads (one eligibility, a batch, a roster page) encode their answers here, with
orjson, instead of through marshmallow: hospital systems ask them many times a second, and a batch
of 1000 spent half its time in the schema's dump. The shape is the documented one
(schemas.standing.EligibilityRead); a contract test checks every answer against openapi.yaml and
against the schema's own dump of the same objects."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import orjson
from flask import Response

from ..services.eligibility import Answer


def _day(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def eligibility(answer: Answer) -> dict[str, Any]:
    """The fields of EligibilityRead, in its order."""
    e = answer.eligibility
    return {
        "practitioner_code": answer.practitioner_code,
        "at": e.at.isoformat(),
        "eligible": e.eligible,
        "status": e.status,
        "reason": e.reason,
        "until": _day(e.until),
        "barred_until": _day(e.barred_until),
        "emergency_care_settles": e.emergency_care_settles,
    }


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def one(answer: Answer) -> Response:
    return json_response(eligibility(answer))


def batch(answers: Iterable[Answer]) -> Response:
    return json_response({"results": [eligibility(a) for a in answers]})


def roster(answers: Iterable[Answer], next_cursor: str | None) -> Response:
    return json_response({"items": [eligibility(a) for a in answers], "next_cursor": next_cursor})
