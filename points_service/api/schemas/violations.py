from __future__ import annotations

from typing import Any

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


class TriggeredMeasure(MeasureRead):
    """A measure task the decision triggered (docs/rules.md rule 13)."""

    type = fields.Constant("measure", required=True, metadata={"type": "string", "enum": ["measure"]})


class TriggeredSanction(SanctionRead):
    """A sanction the decision imposed (docs/rules.md rules 11, 12, 14-17)."""

    type = fields.Constant("sanction", required=True, metadata={"type": "string", "enum": ["sanction"]})


class TriggeredList(fields.Field):
    """What one decision set off: its measure tasks, then its sanctions, each tagged by `type`
    (documented as an array of oneOf TriggeredMeasure | TriggeredSanction: api.document_triggered)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> list[dict]:
        return [*_MEASURES.dump(value.measures), *_SANCTIONS.dump(value.sanctions)]


_MEASURES = TriggeredMeasure(many=True)
_SANCTIONS = TriggeredSanction(many=True)


class ViolationRead(BaseSchema):
    """A decision (`Decision`: the violation and where it stands in the ledger)."""

    id = fields.Integer(required=True, attribute="violation.id")
    case_ref = fields.String(required=True, attribute="violation.case_ref")
    practitioner_code = fields.String(required=True, attribute="violation.practitioner.code")
    institution_code = fields.String(required=True, attribute="violation.institution.code")
    behaviour_code = fields.String(required=True, attribute="violation.behaviour_code")
    responsibility = fields.String(required=True, attribute="violation.responsibility")
    adjustment = fields.String(allow_none=True, attribute="violation.adjustment")
    adjustment_reason = fields.String(allow_none=True, attribute="violation.adjustment_reason")
    points = fields.Integer(required=True, attribute="violation.points")
    occurred_on = fields.Date(required=True, attribute="violation.occurred_on")
    decided_on = fields.Date(required=True, attribute="violation.decided_on")
    score_year = fields.Integer(required=True, attribute="violation.score_year")
    profile = fields.String(required=True, attribute="violation.profile_id")
    description = fields.String(allow_none=True, attribute="violation.description")
    evidence_refs = fields.List(fields.String(), required=True, attribute="violation.evidence_refs")
    state = fields.String(required=True, validate=validate.OneOf(["effective", "amended", "revoked"]))
    current_points = fields.Integer(
        required=True, metadata={"description": "the points in force: amended by an appeal, 0 once revoked"}
    )
    created_at = fields.AwareDateTime(required=True, attribute="violation.created_at")


class ViolationRecorded(ViolationRead):
    standing = fields.Nested(StandingRead, required=True)
    triggered = TriggeredList(required=True)


class ViolationPreviewCreate(ViolationCreate):
    """The body of a decision to post, its case number optional: nothing is recorded."""

    case_ref = Identifier(
        max_length=100,
        load_default=None,
        metadata={
            "description": "optional in a preview; a case already recorded is answered as a post would"
        },
    )


class ViolationPreview(ViolationRecorded):
    """What posting the decision would answer; `id` is null (nothing was created)."""

    id = fields.Integer(required=True, allow_none=True, attribute="violation.id")
    case_ref = fields.String(required=True, allow_none=True, attribute="violation.case_ref")
