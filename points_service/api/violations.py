"""Violations: scoring decisions posted by inspectors."""

from __future__ import annotations

import uuid

from flask.views import MethodView

from ..clock import utc_now
from ..services import violations as svc
from .base import Blueprint, principal, request_id, runtime, session
from .idempotency import idempotent
from .schemas.violations import (
    ViolationCreate,
    ViolationPreview,
    ViolationPreviewCreate,
    ViolationRead,
    ViolationRecorded,
)

blp = Blueprint("violations", __name__, url_prefix="/v1", description="Scoring decisions (docs/rules.md §2)")


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
        location = {"Location": f"/v1/violations/{recorded.violation.id}"}
        return recorded, (201 if recorded.created else 200), location


@blp.route("/violations/preview")
class ViolationPreviewView(MethodView):
    @blp.requires("violations:preview", write=True, operation_id="previewViolation")
    @blp.arguments(ViolationPreviewCreate)
    @blp.response(200, ViolationPreview)
    @blp.alt_response(409, response="CONFLICT", description="The case_ref exists with different content")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data):
        """What recording this decision would bring (points, standing, triggered); records nothing"""
        data["evidence_refs"] = tuple(data.get("evidence_refs", ()))
        previewed = data.get("case_ref") is not None
        data["case_ref"] = data["case_ref"] if previewed else f"preview-{uuid.uuid4().hex}"
        recorded = svc.preview_violation(
            session(),
            principal(),
            svc.RecordViolation(**data),
            policies=runtime().settings.policies,
            now=utc_now(),
        )
        if not previewed:
            recorded.violation.case_ref = None  # type: ignore[assignment]  # the placeholder is nobody's case number
        return recorded


@blp.route("/violations/<int:violation_id>")
class ViolationById(MethodView):
    @blp.requires("violations:read", operation_id="getViolation")
    @blp.response(200, ViolationRead)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, violation_id):
        """Read a decision and its current state (effective, amended, revoked)"""
        return svc.get_violation(session(), principal(), violation_id)
