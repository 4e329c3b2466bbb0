"""The profiles in force and the health checks."""

from __future__ import annotations

from flask.views import MethodView

from ..clock import local_today
from ..services.errors import PointsServiceError
from ..services.health import database_answers
from .base import Blueprint, runtime
from .schemas.policy import HealthRead, PolicyRead

blp = Blueprint("policy", __name__, url_prefix="/v1", description="Policy profiles (docs/rules.md §3, §6)")
health = Blueprint("health", __name__, url_prefix="/health", description="Liveness and readiness")


class NotReady(PointsServiceError):
    status = 503
    title = "Not ready"
    type_slug = "not-ready"


@blp.route("/policy")
class PolicyView(MethodView):
    @blp.requires("policy:read", operation_id="getPolicy")
    @blp.response(200, PolicyRead)
    def get(self):
        """The profiles in force today: thresholds, terms, catalogue, repair credits"""
        policies = runtime().settings.policies
        return {
            "default_profile": policies.default_id,
            "profiles": [p.to_mapping() for p in policies.in_force(local_today())],
        }


@health.route("/live")
class Live(MethodView):
    @health.public("getLiveness")
    @health.response(200, HealthRead)
    def get(self):
        """The process is up (never touches the database)"""
        return {"status": "ok"}


@health.route("/ready")
class Ready(MethodView):
    @health.public("getReadiness")
    @health.response(200, HealthRead)
    @health.alt_response(503, response="SERVICE_UNAVAILABLE")
    def get(self):
        """The database answers"""
        if not database_answers(runtime().sessions):
            raise NotReady("the database is not reachable")
        return {"status": "ready"}
