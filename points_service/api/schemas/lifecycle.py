"""Repairs, appeals and measure tasks."""

from __future__ import annotations

from marshmallow import fields, validate

from ...rules.appeals import APPEAL_OUTCOMES
from ...rules.policy import MEASURE_KINDS, REPAIR_ACTIVITIES
from ..base import BaseSchema, PageArgs
from .fields import CODE, Identifier, LegalDate, Name, Text

REPAIR_STATUSES = ["submitted", "institution_approved", "approved", "rejected"]
MEASURE_STATES = ["pending", "completed", "published", "cancelled", "withdrawn"]


class _RepairApplication(BaseSchema):
    practitioner_code = fields.String(required=True, validate=CODE)
    institution_code = fields.String(
        required=True,
        validate=CODE,
        metadata={"description": "the person's institution, which reviews first"},
    )
    activity = fields.String(required=True, validate=validate.OneOf(REPAIR_ACTIVITIES))
    completed_on = LegalDate(required=True)


class RepairCreate(_RepairApplication):
    evidence_ref = Identifier(required=True, max_length=500)


class RepairPreviewCreate(_RepairApplication):
    """An application as it would be submitted; the evidence may still be on its way."""

    evidence_ref = Identifier(max_length=500)


class RepairPreview(BaseSchema):
    """What the application would bring if the agency approved it today (docs/rules.md §4)."""

    practitioner_code = fields.String(required=True)
    institution_code = fields.String(required=True)
    activity = fields.String(required=True)
    profile = fields.String(
        required=True, metadata={"description": "the policy profile that would credit it"}
    )
    score_year = fields.Integer(required=True)
    points_total = fields.Integer(required=True, metadata={"description": "the year's points now"})
    activity_value = fields.Integer(
        required=True, metadata={"description": "what the activity is worth in the profile (rule 20)"}
    )
    allowed = fields.Boolean(required=True, metadata={"description": "whether it could succeed today"})
    refusal = fields.String(
        required=True, allow_none=True, metadata={"description": "why it cannot, citing the rule"}
    )
    credit = fields.Integer(required=True, metadata={"description": "the points it would remove"})
    limited_by = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "the cap that cut the credit below the activity's value (rule 21)"},
    )
    months_shortened = fields.Integer(
        required=True, metadata={"description": "months off the suspension or bar in effect (rule 22)"}
    )
    shortened = fields.String(required=True, allow_none=True, validate=validate.OneOf(["suspension", "bar"]))


class RepairCredit(BaseSchema):
    points = fields.Integer(required=True)
    months_shortened = fields.Integer(required=True)
    shortened = fields.String(allow_none=True, validate=validate.OneOf(["suspension", "bar"]))


class RepairRead(BaseSchema):
    """A `Repair`: the application and, once approved, its credit."""

    id = fields.Integer(required=True, attribute="application.id")
    practitioner_code = fields.String(required=True, attribute="application.practitioner.code")
    institution_code = fields.String(required=True, attribute="application.institution.code")
    activity = fields.String(required=True, attribute="application.activity")
    completed_on = fields.Date(required=True, attribute="application.completed_on")
    evidence_ref = fields.String(required=True, attribute="application.evidence_ref")
    status = fields.String(
        required=True, validate=validate.OneOf(REPAIR_STATUSES), attribute="application.status"
    )
    version = fields.Integer(
        required=True, attribute="application.version", metadata={"description": "send it back with a review"}
    )
    submitted_at = fields.AwareDateTime(required=True, attribute="application.submitted_at")
    institution_comment = fields.String(allow_none=True, attribute="application.institution_comment")
    institution_reviewed_at = fields.AwareDateTime(
        allow_none=True, attribute="application.institution_reviewed_at"
    )
    agency_comment = fields.String(allow_none=True, attribute="application.agency_comment")
    agency_reviewed_on = fields.Date(
        allow_none=True,
        attribute="application.agency_reviewed_on",
        metadata={"description": "the day the credit took effect"},
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
    practitioner_code = fields.String(required=True, attribute="practitioner.code")
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
    practitioner_code = fields.String(required=True, attribute="practitioner.code")
    institution_code = fields.String(required=True, attribute="institution.code")
    kind = fields.String(required=True, validate=validate.OneOf(MEASURE_KINDS))
    year = fields.Integer(required=True)
    triggered_on = fields.Date(required=True)
    violation_id = fields.Integer(required=True)
    state = fields.String(required=True, validate=validate.OneOf(MEASURE_STATES))
    completed_on = fields.Date(allow_none=True)
    published_on = fields.Date(allow_none=True)
    published_name = fields.String(
        allow_none=True, metadata={"description": "a notice: the name it was published under"}
    )
    withdrawn_at = fields.AwareDateTime(
        allow_none=True,
        metadata={"description": "a notice withdrawn from the public register because its cause was revoked"},
    )
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
    published_name = Name(
        load_default=None,
        metadata={
            "description": "the name the notice is published under, as the agency writes it (often "
            "the surname and the given name's initial); default: the person's registry name"
        },
    )
    note = Text(max_length=4000, load_default=None)
