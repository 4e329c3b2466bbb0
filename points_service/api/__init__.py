"""HTTP only: the Api, its blueprints and the problem+json error handling."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_smorest import Api as SmorestApi
from flask_smorest.utils import prepare_response
from werkzeug.routing import IntegerConverter, UnicodeConverter

from .base import HEADER_PARAMETERS
from .errors import PROBLEM, ProblemSchema, handle_http_exception, register_error_handlers


class Api(SmorestApi):
    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        # every documented error is RFC 9457 problem+json
        import http

        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM)
            self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "Problem details (RFC 9457)", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM)
        self.spec.components.response("DEFAULT_ERROR", default, lazy=True)
        # the answers any operation may give whatever it does, with what the client should do next
        for name, description, headers in (
            (
                "PAYLOAD_TOO_LARGE",
                "The body is larger than the deployment's limit (POINTS_MAX_BODY_BYTES, 1 MiB by "
                "default); nothing was read or written",
                None,
            ),
            (
                "RATE_LIMITED",
                "Too many requests from this API key (or, for unknown keys, from this address); "
                "retry after `Retry-After` seconds",
                {"Retry-After": RETRY_AFTER},
            ),
            (
                "UNAVAILABLE",
                "The database is not reachable; nothing was written; retry after `Retry-After` "
                "seconds (a write with the same `case_ref` or `Idempotency-Key` counts once)",
                {"Retry-After": RETRY_AFTER},
            ),
        ):
            response = {"description": description, "schema": self.ERROR_SCHEMA}
            if headers:
                response["headers"] = headers
            prepare_response(response, self.spec, PROBLEM)
            self.spec.components.response(name, response, lazy=True)
        for name, parameter in HEADER_PARAMETERS.items():
            fields = {k: v for k, v in parameter.items() if k != "in"}
            self.spec.components.parameter(name, parameter["in"], fields, lazy=True)

    def handle_http_exception(self, error):
        return handle_http_exception(error)

    def _openapi_swagger_ui(self):
        # flask-smorest's page starts Swagger UI with an inline script; ours is a served file, so
        # the page's Content-Security-Policy needs no 'unsafe-inline' (api/docs.py)
        from flask import url_for

        from .docs import page

        return page(title=self.spec.title, spec_url=url_for("api-docs.openapi_json"))


RETRY_AFTER = {
    "description": "seconds to wait before retrying",
    "schema": {"type": "integer", "minimum": 0},
}


class DatabaseId(IntegerConverter):
    """`<int:…>` in every route: a path id is a BIGINT at most, so a larger one is a 404 from
    routing instead of an overflow in the database (a 500), and openapi.yaml says `maximum`."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)


class PathText(UnicodeConverter):
    """Every string path part (codes): one holding a NUL character matches no route and is a 404,
    instead of reaching PostgreSQL, whose text cannot hold it (a 500)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, *args, **kwargs)
        # UnicodeConverter builds `[^/]{min,max}` from its length arguments
        self.regex = self.regex.replace("[^/]", "[^/\\x00]")


SPEC_OPTIONS = {
    "API_TITLE": "points_service",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_URL_PREFIX": "/",
    # the interactive reference at /docs; its scripts and styles are served by api/docs.py
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": "/docs/swagger-ui/",
    "API_SPEC_OPTIONS": {
        "info": {
            "description": "Demerit points and payment eligibility of the people who use the "
            "medical-insurance fund (医保支付资格管理). The rules, numbered as problem bodies cite "
            "them (`rule`), are in docs/rules.md; the guide for integrators (auth and roles, "
            "Idempotency-Key, If-Match, pagination, rate limits, the error catalogue) is "
            "docs/api.md, both in the project's repository. "
            "Dates are YYYY-MM-DD in Asia/Shanghai; instants are RFC 3339 UTC; "
            "ranges are half-open [start, end).",
        },
        "servers": [{"url": "/", "description": "this deployment"}],
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API key from `points-service keys create`",
                }
            }
        },
    },
}


def init_api(app: Flask) -> Api:
    from . import agency, audit, docs, events, lifecycle, policy, registry, standing, violations

    for key, value in SPEC_OPTIONS.items():
        app.config.setdefault(key, value)
    # before any route is added
    app.url_map.converters["int"] = DatabaseId
    app.url_map.converters["default"] = app.url_map.converters["string"] = PathText
    api = Api(app)
    api.ma_plugin.converter.add_attribute_function(document_triggered)
    for blp in (
        registry.blp,
        violations.blp,
        standing.blp,
        lifecycle.blp,
        events.blp,
        audit.blp,
        agency.blp,
        policy.blp,
        policy.health,
    ):
        api.register_blueprint(blp)
    app.register_blueprint(docs.assets)
    register_error_handlers(app)
    return api


def document_triggered(converter: Any, field: Any, **kwargs: Any) -> dict[str, Any]:
    """The `triggered` list is measures and sanctions: an array of oneOf, told apart by `type`."""
    from .schemas.violations import TriggeredList, TriggeredMeasure, TriggeredSanction

    if not isinstance(field, TriggeredList):
        return {}
    measure = converter.resolve_nested_schema(TriggeredMeasure)
    sanction = converter.resolve_nested_schema(TriggeredSanction)
    return {
        "type": "array",
        "items": {
            "oneOf": [measure, sanction],
            "discriminator": {
                "propertyName": "type",
                "mapping": {"measure": measure["$ref"], "sanction": sanction["$ref"]},
            },
        },
    }
