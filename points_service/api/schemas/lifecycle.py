"""Repairs, appeals and measure tasks (issue 3)."""

from __future__ import annotations

from marshmallow import fields, validate

from ...rules.appeals import APPEAL_OUTCOMES
from ...rules.policy import MEASURE_KINDS, REPAIR_ACTIVITIES
from ..base import BaseSchema, PageArgs
from .fields import CODE, Identifier, LegalDate, Text

REPAIR_STATUSES = ["submitted", "institution_approved", "approved", "rejected"]
MEASURE_STATES = ["pending", "completed", "published", "cancelled"]


class RepairCreate(BaseSchema):
    practitioner_code = fields.String(required=True, validate=CODE)
    institution_code = fields.String(
        required=True,
        validate=CODE,
        metadata={"description": "the person's institution, which reviews first"},
    )
    activity = fields.String(required=True, validate=validate.OneOf(REPAIR_ACTIVITIES))
    completed_on = LegalDate(required=True)
    evidence_ref = Identifier(required=True, max_length=500)


class RepairCredit(BaseSchema):
    points = fields.Integer(required=True)
    months_shortened = fields.Integer(required=True)
    shortened = fields.String(allow_none=True, validate=validate.OneOf(["suspension", "bar"]))


class RepairRead(BaseSchema):
    id = fields.Integer(required=True)
    practitioner_code = fields.String(required=True)
    institution_code = fields.String(required=True)
    activity = fields.String(required=True)
    completed_on = fields.Date(required=True)
    evidence_ref = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(REPAIR_STATUSES))
    version = fields.Integer(required=True, metadata={"description": "send it back with a review"})
    submitted_at = fields.AwareDateTime(required=True)
    institution_comment = fields.String(allow_none=True)
    institution_reviewed_at = fields.AwareDateTime(allow_none=True)
    agency_comment = fields.String(allow_none=True)
    agency_reviewed_on = fields.Date(
        allow_none=True, metadata={"description": "the day the credit took effect"}
    )
    credit = fields.Nested(
        RepairCredit,
        allow_none=True,
        metadata={"description": "what the approval credits, as the rules now compute it"},
    )


class RepairReview(BaseSchema):
    decision = fields.String(required=True, validate=validate.OneOf(["approve", "reject"]))
    comment = Text(max_length=2000, load_default=None)
    version = fields.Integer(
        strict=True,
        metadata={"description": "the version last read; required unless an If-Match header is sent"},
    )


class RepairQuery(PageArgs):
    practitioner_code = fields.String(validate=CODE)
    status = fields.String(validate=validate.OneOf(REPAIR_STATUSES))


class RepairPage(BaseSchema):
    items = fields.List(fields.Nested(RepairRead), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class AppealCreate(BaseSchema):
    reason = Text(required=True, max_length=4000, required_text=True)


class AppealRead(BaseSchema):
    id = fields.Integer(required=True)
    violation_id = fields.Integer(required=True)
    practitioner_code = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["open", *APPEAL_OUTCOMES]))
    reason = fields.String(required=True)
    filed_on = fields.Date(required=True)
    deadline = fields.Date(required=True, metadata={"description": "the last day of the appeal window"})
    deadline_estimated = fields.Boolean(
        required=True,
        metadata={
            "description": "true when the window runs into a year whose official holidays are not known"
        },
    )
    outcome_points = fields.Integer(allow_none=True)
    outcome_reason = fields.String(allow_none=True)
    decided_on = fields.Date(allow_none=True)
    version = fields.Integer(required=True)


class AppealDecision(BaseSchema):
    outcome = fields.String(required=True, validate=validate.OneOf(APPEAL_OUTCOMES))
    points = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=12),
        metadata={"description": "the new points, with outcome `amended` only"},
    )
    reason = Text(required=True, max_length=4000, required_text=True)
    version = fields.Integer(strict=True, metadata={"description": "optional: the version last read"})


class MeasureTask(BaseSchema):
    id = fields.Integer(required=True)
    practitioner_code = fields.String(required=True)
    institution_code = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(MEASURE_KINDS))
    year = fields.Integer(required=True)
    triggered_on = fields.Date(required=True)
    violation_id = fields.Integer(required=True)
    state = fields.String(required=True, validate=validate.OneOf(MEASURE_STATES))
    completed_on = fields.Date(allow_none=True)
    published_on = fields.Date(allow_none=True)
    note = fields.String(allow_none=True)


class MeasureQuery(PageArgs):
    institution_code = fields.String(validate=CODE)
    state = fields.String(validate=validate.OneOf(MEASURE_STATES))


class MeasurePage(BaseSchema):
    items = fields.List(fields.Nested(MeasureTask), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class MeasureComplete(BaseSchema):
    completed_on = LegalDate(required=True)
    note = Text(max_length=4000, load_default=None)


class MeasurePublish(BaseSchema):
    published_on = LegalDate(required=True)
    note = Text(max_length=4000, load_default=None)
