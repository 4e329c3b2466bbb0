"""HTTP only: the Api, its blueprints and the problem+json error handling."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_smorest import Api as SmorestApi
from flask_smorest.utils import prepare_response
from werkzeug.routing import IntegerConverter, UnicodeConverter

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

    def handle_http_exception(self, error):  # type: ignore[override]
        return handle_http_exception(error)


class DatabaseId(IntegerConverter):
    """`<int:…>` in every route: a path id is a BIGINT at most, so a larger one is a 404 from
    routing instead of an overflow in the database (a 500), and openapi.yaml says `maximum`."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)


class PathText(UnicodeConverter):
    """Every string path part (codes): one holding a NUL character matches no route and is a 404,
    instead of reaching PostgreSQL, whose text cannot hold it (a 500; BUG-4)."""

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
    "API_SPEC_OPTIONS": {
        "info": {
            "description": "Demerit points and payment eligibility of the people who use the "
            "medical-insurance fund (医保支付资格管理). Rules: policy.md; contract: api.md. "
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
    from . import audit, events, lifecycle, policy, registry, standing, violations

    for key, value in SPEC_OPTIONS.items():
        app.config.setdefault(key, value)
    # before any route is added
    app.url_map.converters["int"] = DatabaseId
    app.url_map.converters["default"] = app.url_map.converters["string"] = PathText
    api = Api(app)
    for blp in (
        registry.blp,
        violations.blp,
        standing.blp,
        lifecycle.blp,
        events.blp,
        audit.blp,
        policy.blp,
        policy.health,
    ):
        api.register_blueprint(blp)
    if app.extensions["points_service"].settings.bench_endpoints:
        from . import bench

        api.register_blueprint(bench.blp)
    register_error_handlers(app)
    return api
