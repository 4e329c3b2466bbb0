"""The one table from exceptions to RFC 9457 problem+json responses."""

from __future__ import annotations

import logging
from typing import Any

import marshmallow as ma
from flask import Flask, Response, json, request
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from ..services.errors import PointsServiceError
from .base import request_id

PROBLEM = "application/problem+json"
log = logging.getLogger("points_service.api")


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details."""

    type = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(required=True)
    instance = ma.fields.String()
    request_id = ma.fields.String()
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.String()),
        metadata={"description": "field -> messages"},
    )
    rule = ma.fields.String(
        metadata={"description": "the rule that forbids the request, e.g. `docs/rules.md rule 21`"}
    )
    barred_until = ma.fields.Date()
    violation_id = ma.fields.Integer()
    location = ma.fields.String()

    class Meta:
        unknown = ma.INCLUDE


RESERVED = frozenset(
    {"type", "title", "status", "detail", "instance", "request_id", "errors", "slug", "headers"}
)


def problem(
    status: int, title: str, detail: str, *, slug: str, errors: Any = None, headers: Any = None, **extra: Any
) -> Response:
    body: dict[str, Any] = {
        "type": f"urn:points-service:problem:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.path,
        "request_id": request_id(),
    }
    if errors:
        body["errors"] = errors
    # extras never overwrite the RFC 9457 members
    body.update({k: v for k, v in extra.items() if v is not None and k not in body})
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """webargs nests errors by location and field; clients want `field -> messages`."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            if prefix == "" and key in ("json", "query", "path", "headers", "form"):
                out.update(_flatten(value, ""))
            else:
                out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out[prefix or "_schema"] = list(messages)
    else:
        out[prefix or "_schema"] = [str(messages)]
    return out


HTTP_SLUGS = {
    400: ("malformed-request", "Malformed request"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("payload-too-large", "Payload too large"),
    429: ("rate-limited", "Too many requests"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-error", "Invalid request"),
    428: ("precondition-required", "Precondition required"),
}


def handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    slug, title = HTTP_SLUGS.get(status, (f"http-{status}", error.name))
    data = getattr(error, "data", None) or {}
    errors = None
    if "messages" in data or "errors" in data:
        errors = _flatten(data.get("errors") or data.get("messages"))
    detail = error.description or error.name
    if status == 422:
        detail = "the request does not match the schema: " + "; ".join(
            f"{field}: {' '.join(msgs)}" for field, msgs in sorted((errors or {}).items())
        )
    elif status == 400 and errors:
        detail = "the request body is not valid JSON"
    headers = dict(data.get("headers") or {})
    if status == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    return problem(status, title, detail, slug=slug, errors=errors, headers=headers)


def challenge() -> str:
    """The WWW-Authenticate of a 401 (RFC 6750 §3): a key that was sent and refused is an
    `invalid_token`; a request that sent none gets the bare challenge, which names the scheme."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return 'Bearer realm="points-service", error="invalid_token"'
    return 'Bearer realm="points-service"'


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(PointsServiceError)
    def _domain(error: PointsServiceError) -> Response:
        extra = {k: v for k, v in error.extra.items() if k not in RESERVED}
        headers = {"WWW-Authenticate": challenge()} if error.status == 401 else None
        return problem(
            error.status,
            error.title,
            error.detail,
            slug=error.type_slug,
            errors=error.errors,
            headers=headers,
            **extra,
        )

    @app.errorhandler(IntegrityError)
    def _integrity(error: IntegrityError) -> Response:
        # a unique key taken by a concurrent request (e.g. the same case_ref for another person)
        log.warning("integrity error: %s", error.orig.__class__.__name__)
        return problem(
            409, "Conflict", "the request conflicts with a concurrent or existing record", slug="conflict"
        )

    @app.errorhandler(DBAPIError)
    def _database(error: DBAPIError) -> Response:
        # a lost connection (the database restarted, a backend was terminated) is "unavailable",
        # and the transaction was rolled back, so nothing was written; anything else is a bug
        if not (isinstance(error, OperationalError) or error.connection_invalidated):
            log.exception("database error")
            return problem(
                500,
                "Internal server error",
                "an unexpected error occurred; nothing was written",
                slug="internal-error",
            )
        log.error("database unavailable: %s", error.orig.__class__.__name__)
        return problem(
            503,
            "Service unavailable",
            "the database is not reachable; nothing was written; retry later",
            slug="database-unavailable",
            headers={"Retry-After": "5"},
        )

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        if isinstance(error, HTTPException):
            return handle_http_exception(error)
        log.exception("unhandled error")
        return problem(
            500,
            "Internal server error",
            "an unexpected error occurred; nothing was written",
            slug="internal-error",
        )
