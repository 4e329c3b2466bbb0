"""Violations: scoring decisions posted by inspectors."""

from __future__ import annotations

from flask.views import MethodView

from ..clock import utc_now
from ..persistence.models import Violation
from ..services import violations as svc
from ..services.state import standing_view
from .base import Blueprint, principal, request_id, runtime, session
from .idempotency import idempotent
from .schemas.violations import ViolationCreate, ViolationRead, ViolationRecorded

blp = Blueprint("violations", __name__, url_prefix="/v1", description="Scoring decisions (docs/rules.md §2)")


def violation_body(
    violation: Violation, practitioner_code: str, institution_code: str, *, new: bool = False
) -> dict:
    # a decision recorded by this very request is in force as posted; only older ones need the ledger
    if new:
        state, current_points = "effective", violation.points
    else:
        state, current_points = svc.violation_state(session(), violation)
    return {
        "id": violation.id,
        "case_ref": violation.case_ref,
        "practitioner_code": practitioner_code,
        "institution_code": institution_code,
        "behaviour_code": violation.behaviour_code,
        "responsibility": violation.responsibility,
        "adjustment": violation.adjustment,
        "adjustment_reason": violation.adjustment_reason,
        "points": violation.points,
        "occurred_on": violation.occurred_on,
        "decided_on": violation.decided_on,
        "score_year": violation.score_year,
        "profile": violation.profile_id,
        "description": violation.description,
        "evidence_refs": violation.evidence_refs,
        "state": state,
        "current_points": current_points,
        "created_at": violation.created_at,
    }


@blp.route("/violations")
class Violations(MethodView):
    @blp.requires("violations:write", write=True, operation_id="recordViolation")
    @idempotent
    @blp.arguments(ViolationCreate)
    @blp.response(201, ViolationRecorded, headers={"Location": {"schema": {"type": "string"}}})
    @blp.alt_response(200, schema=ViolationRecorded, description="The same case posted again: counted once")
    @blp.alt_response(409, response="CONFLICT", description="The case_ref exists with different content")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data):
        """Record a scoring decision; returns the new standing and what it triggered"""
        data["evidence_refs"] = tuple(data.get("evidence_refs", ()))
        now = utc_now()
        recorded = svc.record_violation(
            session(),
            principal(),
            svc.RecordViolation(**data),
            policies=runtime().settings.policies,
            now=now,
            request_id=request_id(),
        )
        v = recorded.violation
        body = violation_body(v, recorded.practitioner.code, recorded.institution_code, new=recorded.created)
        body["standing"] = standing_view(
            session(),
            principal(),
            recorded.practitioner,
            recorded.state,
            year=v.score_year,
            now=now,
            measures=recorded.measures,
        )
        body["triggered"] = svc.triggered_view(session(), recorded)
        return body, (201 if recorded.created else 200), {"Location": f"/v1/violations/{v.id}"}


@blp.route("/violations/<int:violation_id>")
class ViolationById(MethodView):
    @blp.requires("violations:read", operation_id="getViolation")
    @blp.response(200, ViolationRead)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, violation_id):
        """Read a decision and its current state (effective, amended, revoked)"""
        violation, practitioner, institution_code = svc.get_violation(session(), principal(), violation_id)
        return violation_body(violation, practitioner.code, institution_code)
