from __future__ import annotations

from marshmallow import fields, validate

from ...rules.policy import MEASURE_KINDS, TIERS
from ...services.history import HISTORY_KINDS
from ..base import BaseSchema, PageArgs
from .fields import CODE, LegalDate

STATUSES = ["active", "suspended", "terminated", "not_registered"]


class MeasureRead(BaseSchema):
    id = fields.Integer(required=True)
    practitioner_code = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(MEASURE_KINDS))
    year = fields.Integer(required=True)
    triggered_on = fields.Date(required=True)
    violation_id = fields.Integer(required=True)
    state = fields.String(
        required=True, validate=validate.OneOf(["pending", "completed", "published", "cancelled"])
    )
    completed_on = fields.Date(allow_none=True)
    note = fields.String(allow_none=True)


class SanctionRead(BaseSchema):
    kind = fields.String(required=True, validate=validate.OneOf(["suspension", "termination"]))
    start = fields.Date(required=True)
    end = fields.Date(metadata={"description": "suspensions: exclusive, eligible again on this day"})
    months = fields.Integer()
    barred_until = fields.Date(
        metadata={"description": "termination: registrations from this day are allowed"}
    )
    bar_years = fields.Integer()
    basis = fields.String(required=True, validate=validate.OneOf(["cumulative", "single_event"]))
    violation_id = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "the decision that imposed it; null if made at another institution"},
    )
    shortened_by_months = fields.Integer(required=True)


class StandingRead(BaseSchema):
    practitioner_code = fields.String(required=True)
    year = fields.Integer(required=True)
    points_total = fields.Integer(required=True)
    points_recorded = fields.Integer(required=True)
    points_repaired = fields.Integer(required=True)
    max_single_event = fields.Integer(required=True)
    tier = fields.String(required=True, validate=validate.OneOf(TIERS))
    status = fields.String(
        required=True, validate=validate.OneOf(STATUSES), metadata={"description": "as of today"}
    )
    status_until = fields.Date(allow_none=True)
    barred_until = fields.Date(allow_none=True)
    measures = fields.List(fields.Nested(MeasureRead), required=True)
    sanctions = fields.List(fields.Nested(SanctionRead), required=True)


class StandingQuery(BaseSchema):
    year = fields.Integer(
        validate=validate.Range(min=2000, max=2200), metadata={"description": "default: this year"}
    )


class EligibilityRead(BaseSchema):
    practitioner_code = fields.String(required=True)
    at = fields.Date(required=True)
    eligible = fields.Boolean(required=True)
    status = fields.String(required=True, validate=validate.OneOf([*STATUSES, "unknown"]))
    reason = fields.String(required=True)
    until = fields.Date(
        allow_none=True, metadata={"description": "the day the current status ends, when known"}
    )
    barred_until = fields.Date(allow_none=True)
    emergency_care_settles = fields.Boolean(required=True)


class EligibilityQuery(BaseSchema):
    at = LegalDate(metadata={"description": "default: today (Asia/Shanghai)"})
    institution_code = fields.String(validate=CODE)


class EligibilityBatch(BaseSchema):
    practitioner_codes = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        required=True,
        validate=validate.Length(min=1, max=1000),
    )
    at = LegalDate()
    institution_code = fields.String(validate=CODE)


class EligibilityBatchRead(BaseSchema):
    results = fields.List(fields.Nested(EligibilityRead), required=True)


class RosterQuery(PageArgs):
    at = LegalDate(metadata={"description": "default: today (Asia/Shanghai)"})


class RosterPage(BaseSchema):
    items = fields.List(fields.Nested(EligibilityRead), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class HistoryItem(BaseSchema):
    kind = fields.String(required=True, validate=validate.OneOf(HISTORY_KINDS))
    on = fields.Date(required=True, metadata={"description": "the legal date it takes effect"})
    at = fields.AwareDateTime(allow_none=True, metadata={"description": "when it was recorded"})
    by = fields.String(
        allow_none=True, metadata={"description": "the key that did it, or `rules` when derived"}
    )
    detail = fields.String(required=True)
    score_year = fields.Integer()
    points = fields.Integer()
    profile = fields.String()
    violation_id = fields.Integer(allow_none=True)
    case_ref = fields.String()
    institution_code = fields.String()
    behaviour_code = fields.String()
    reverses_entry_id = fields.Integer()
    repair_id = fields.Integer()
    appeal_id = fields.Integer()


class HistoryPage(BaseSchema):
    items = fields.List(fields.Nested(HistoryItem), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
