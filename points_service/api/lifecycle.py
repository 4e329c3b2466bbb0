"""Repairs, appeals and measure tasks: the human steps of the case lifecycle (docs/rules.md §4, §5,
rule 13)."""

from __future__ import annotations

from flask.views import MethodView

from ..clock import utc_now
from ..services import appeals as appeals_svc
from ..services import measures as measures_svc
from ..services import repairs as repairs_svc
from .base import (
    Blueprint,
    decode_cursor,
    encode_cursor,
    etag,
    if_match_version,
    principal,
    request_id,
    runtime,
    session,
)
from .idempotency import idempotent
from .schemas.lifecycle import (
    AppealCreate,
    AppealDecision,
    AppealRead,
    MeasureComplete,
    MeasurePage,
    MeasurePublish,
    MeasureQuery,
    MeasureTask,
    RepairCreate,
    RepairPage,
    RepairPreview,
    RepairPreviewCreate,
    RepairQuery,
    RepairRead,
    RepairReview,
)

blp = Blueprint("lifecycle", __name__, url_prefix="/v1", description="Repairs, appeals and measures (§4, §5)")
ETAG_HEADER = {"ETag": {"schema": {"type": "string"}, "description": "the version, for If-Match"}}


# -- repairs ----------------------------------------------------------------------------------


@blp.route("/repairs")
class Repairs(MethodView):
    @blp.requires("repairs:submit", write=True, operation_id="submitRepair")
    @idempotent
    @blp.arguments(RepairCreate)
    @blp.response(201, RepairRead, headers={"Location": {"schema": {"type": "string"}}, **ETAG_HEADER})
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(
        422,
        response="UNPROCESSABLE_ENTITY",
        description="The rules forbid it: nothing to repair, a cap reached, a single-event 12",
    )
    def post(self, data):
        """Apply to repair points by an activity (the person, or their HR system on their behalf)"""
        repair = repairs_svc.submit_repair(
            session(),
            principal(),
            repairs_svc.SubmitRepair(**data),
            policies=runtime().settings.policies,
            now=utc_now(),
            request_id=request_id(),
        )
        location = {"Location": f"/v1/repairs/{repair.application.id}"}
        return repair, 201, {**location, **etag(repair.application.version)}

    @blp.requires("repairs:read", operation_id="listRepairs")
    @blp.arguments(RepairQuery, location="query")
    @blp.response(200, RepairPage)
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, args):
        """Repair applications the caller may see, oldest first (paginated)"""
        items, last = repairs_svc.list_repairs(
            session(),
            principal(),
            practitioner_code=args.get("practitioner_code"),
            status=args.get("status"),
            after=decode_cursor(args.get("cursor"), int),
            limit=args["limit"],
        )
        return {"items": items, "next_cursor": encode_cursor(last) if last else None}


@blp.route("/repairs/preview")
class RepairPreviewView(MethodView):
    @blp.requires("repairs:submit", write=True, operation_id="previewRepair")
    @blp.arguments(RepairPreviewCreate)
    @blp.response(200, RepairPreview)
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data):
        """What an application would bring if approved today: credit, months shortened, or why not"""
        data.setdefault("evidence_ref", "")
        return repairs_svc.preview_repair(
            session(),
            principal(),
            repairs_svc.SubmitRepair(**data),
            policies=runtime().settings.policies,
            now=utc_now(),
        )


@blp.route("/repairs/<int:repair_id>")
class RepairById(MethodView):
    @blp.requires("repairs:read", operation_id="getRepair")
    @blp.response(200, RepairRead, headers=ETAG_HEADER)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, repair_id):
        """A repair application with its version (also as ETag)"""
        repair = repairs_svc.get_repair(session(), principal(), repair_id)
        return repair, etag(repair.application.version)


def _review(repair_id: int, data: dict, stage: str):
    repair = repairs_svc.review_repair(
        session(),
        principal(),
        repairs_svc.ReviewRepair(repair_id=repair_id, if_match=if_match_version(), **data),
        stage=stage,
        policies=runtime().settings.policies,
        now=utc_now(),
        request_id=request_id(),
    )
    return repair, etag(repair.application.version)


@blp.route("/repairs/<int:repair_id>/institution-review")
class InstitutionReview(MethodView):
    @blp.requires("repairs:institution_review", write=True, operation_id="reviewRepairAsInstitution")
    @blp.arguments(RepairReview)
    @blp.if_match(required=True)
    @blp.response(200, RepairRead, headers=ETAG_HEADER)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="Stale version, or not awaiting this review")
    @blp.alt_response(412, response="PRECONDITION_FAILED", description="If-Match does not match")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data, repair_id):
        """The person's institution approves or rejects (first step)"""
        return _review(repair_id, data, "institution")


@blp.route("/repairs/<int:repair_id>/agency-review")
class AgencyReview(MethodView):
    @blp.requires("repairs:agency_review", write=True, operation_id="reviewRepairAsAgency")
    @blp.arguments(RepairReview)
    @blp.if_match(required=True)
    @blp.response(200, RepairRead, headers=ETAG_HEADER)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(
        409,
        response="CONFLICT",
        description="Stale version, before the institution's review, or already decided",
    )
    @blp.alt_response(412, response="PRECONDITION_FAILED", description="If-Match does not match")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY", description="The repair can no longer succeed")
    def post(self, data, repair_id):
        """The agency approves (points credited, terms shortened, on this date) or rejects"""
        return _review(repair_id, data, "agency")


# -- appeals ----------------------------------------------------------------------------------


@blp.route("/violations/<int:violation_id>/appeals")
class Appeals(MethodView):
    @blp.requires("appeals:file", write=True, operation_id="fileAppeal")
    @idempotent
    @blp.arguments(AppealCreate)
    @blp.response(201, AppealRead, headers={"Location": {"schema": {"type": "string"}}, **ETAG_HEADER})
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="Already appealed, or revoked")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY", description="After the appeal window")
    def post(self, data, violation_id):
        """Appeal a decision within 15 Chinese working days of its decision date"""
        rt = runtime()
        appeal = appeals_svc.file_appeal(
            session(),
            principal(),
            violation_id,
            data["reason"],
            policies=rt.settings.policies,
            calendar=rt.settings.calendar,
            now=utc_now(),
            request_id=request_id(),
        )
        return appeal, 201, {"Location": f"/v1/appeals/{appeal.id}", **etag(appeal.version)}


@blp.route("/appeals/<int:appeal_id>")
class AppealById(MethodView):
    @blp.requires("appeals:read", operation_id="getAppeal")
    @blp.response(200, AppealRead, headers=ETAG_HEADER)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, appeal_id):
        """An appeal, visible to whoever may see its decision"""
        appeal = appeals_svc.get_appeal(session(), principal(), appeal_id)
        return appeal, etag(appeal.version)


@blp.route("/appeals/<int:appeal_id>/decision")
class AppealDecisionView(MethodView):
    @blp.requires("appeals:decide", write=True, operation_id="decideAppeal")
    @blp.arguments(AppealDecision)
    @blp.if_match(required=False)
    @blp.response(200, AppealRead, headers=ETAG_HEADER)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="Already decided, or a stale version")
    @blp.alt_response(412, response="PRECONDITION_FAILED", description="If-Match does not match")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data, appeal_id):
        """Uphold, amend (new points) or revoke the decision; everything derived is recomputed"""
        appeal = appeals_svc.decide_appeal(
            session(),
            principal(),
            appeals_svc.DecideAppeal(appeal_id=appeal_id, if_match=if_match_version(), **data),
            policies=runtime().settings.policies,
            now=utc_now(),
            request_id=request_id(),
        )
        return appeal, etag(appeal.version)


# -- measures ---------------------------------------------------------------------------------


@blp.route("/measures")
class Measures(MethodView):
    @blp.requires("measures:read", operation_id="listMeasures")
    @blp.arguments(MeasureQuery, location="query")
    @blp.response(200, MeasurePage)
    @blp.alt_response(404, response="NOT_FOUND", description="Another institution's queue")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, args):
        """The caller's queue of talks and notices: a hospital's institution talks, or the agency's"""
        rows, last = measures_svc.list_measures(
            session(),
            principal(),
            institution_code=args.get("institution_code"),
            state=args.get("state"),
            after=decode_cursor(args.get("cursor"), int),
            limit=args["limit"],
        )
        return {"items": rows, "next_cursor": encode_cursor(last) if last else None}


def _finish(measure_id: int, on, note, *, publish: bool, published_name: str | None = None):
    measure = measures_svc.complete_measure(
        session(),
        principal(),
        measure_id,
        completed_on=on,
        note=note,
        publish=publish,
        published_name=published_name,
        now=utc_now(),
        request_id=request_id(),
    )
    return measure


@blp.route("/measures/<int:measure_id>/complete")
class MeasureCompletion(MethodView):
    @blp.requires("measures:complete", write=True, operation_id="completeMeasure")
    @blp.arguments(MeasureComplete)
    @blp.response(200, MeasureTask)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="Not pending (completed or cancelled)")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data, measure_id):
        """Record that the talk or notice was carried out"""
        return _finish(measure_id, data["completed_on"], data["note"], publish=False)


@blp.route("/measures/<int:measure_id>/publish")
class MeasurePublication(MethodView):
    @blp.requires("measures:complete", write=True, operation_id="publishMeasure")
    @blp.arguments(MeasurePublish)
    @blp.response(200, MeasureTask)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description="Not a notice, already published, or ended")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data, measure_id):
        """Mark a circulated notice as published on the agency's website (it joins the public register)"""
        on, name = data["published_on"], data["published_name"]
        return _finish(measure_id, on, data["note"], publish=True, published_name=name)
