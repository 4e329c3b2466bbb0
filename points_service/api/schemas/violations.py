from __future__ import annotations

from marshmallow import fields, validate

from ...rules.policy import ADJUSTMENTS, RESPONSIBILITIES
from ..base import BaseSchema
from .fields import CODE, Identifier, LegalDate, Text
from .standing import MeasureRead, SanctionRead, StandingRead


class ViolationCreate(BaseSchema):
    case_ref = Identifier(
        required=True,
        max_length=100,
        metadata={"description": "unique case number from the inspector's system"},
    )
    practitioner_code = fields.String(required=True, validate=CODE)
    institution_code = fields.String(required=True, validate=CODE)
    behaviour_code = fields.String(
        required=True,
        validate=validate.Length(min=1, max=16),
        metadata={"description": "docs/rules.md rule 7 catalogue code, e.g. B2-01"},
    )
    responsibility = fields.String(required=True, validate=validate.OneOf(RESPONSIBILITIES))
    points = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=12),
        metadata={"description": "optional; default from code + responsibility"},
    )
    adjustment = fields.String(validate=validate.OneOf(ADJUSTMENTS))
    adjustment_reason = Text(max_length=2000, required_text=True)
    occurred_on = LegalDate(required=True)
    decided_on = LegalDate(required=True, metadata={"description": "decides the score year (rule 6)"})
    description = Text(max_length=4000)
    evidence_refs = fields.List(
        Identifier(max_length=500),
        validate=validate.Length(max=100),
        load_default=list,
    )


class TriggeredRead(BaseSchema):
    type = fields.String(required=True, validate=validate.OneOf(["measure", "sanction"]))
    # a measure's fields
    id = fields.Integer()
    practitioner_code = fields.String()
    kind = fields.String(required=True)
    year = fields.Integer()
    triggered_on = fields.Date()
    violation_id = fields.Integer(required=True)
    state = fields.String()
    completed_on = fields.Date(allow_none=True)
    note = fields.String(allow_none=True)
    # a sanction's fields
    start = fields.Date()
    end = fields.Date()
    months = fields.Integer()
    barred_until = fields.Date()
    bar_years = fields.Integer()
    basis = fields.String()
    shortened_by_months = fields.Integer()


class ViolationRead(BaseSchema):
    id = fields.Integer(required=True)
    case_ref = fields.String(required=True)
    practitioner_code = fields.String(required=True)
    institution_code = fields.String(required=True)
    behaviour_code = fields.String(required=True)
    responsibility = fields.String(required=True)
    adjustment = fields.String(allow_none=True)
    adjustment_reason = fields.String(allow_none=True)
    points = fields.Integer(required=True)
    occurred_on = fields.Date(required=True)
    decided_on = fields.Date(required=True)
    score_year = fields.Integer(required=True)
    profile = fields.String(required=True)
    description = fields.String(allow_none=True)
    evidence_refs = fields.List(fields.String(), required=True)
    state = fields.String(required=True, validate=validate.OneOf(["effective", "amended", "revoked"]))
    current_points = fields.Integer(
        required=True, metadata={"description": "the points in force: amended by an appeal, 0 once revoked"}
    )
    created_at = fields.AwareDateTime(required=True)


class ViolationRecorded(ViolationRead):
    standing = fields.Nested(StandingRead, required=True)
    triggered = fields.List(fields.Nested(TriggeredRead), required=True)


__all__ = ["MeasureRead", "SanctionRead"]
