from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from ...rules.policy import MEASURE_KINDS, TIERS
from ...services.history import HISTORY_KINDS
from ..base import BaseSchema, PageArgs
from .fields import CODE, LegalDate

STATUSES = ["active", "suspended", "terminated", "not_registered"]


class MeasureRead(BaseSchema):
    id = fields.Integer(
        required=True, allow_none=True, metadata={"description": "null only in a preview: not created yet"}
    )
    practitioner_code = fields.String(required=True, attribute="practitioner.code")
    kind = fields.String(required=True, validate=validate.OneOf(MEASURE_KINDS))
    year = fields.Integer(required=True)
    triggered_on = fields.Date(required=True)
    violation_id = fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "null only in a preview: the decision previewed"},
    )
    state = fields.String(
        required=True,
        validate=validate.OneOf(["pending", "completed", "published", "cancelled", "withdrawn"]),
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

    @ma.post_dump
    def _only_its_kind(self, data: dict, **_kwargs: Any) -> dict:
        """A suspension has an end and months, a termination a bar: neither shows the other's."""
        for name in ("end", "months", "barred_until", "bar_years"):
            if data.get(name, 0) is None:
                del data[name]
        return data


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
    """An `Answer`: the person's code and the rules' eligibility on the day."""

    practitioner_code = fields.String(required=True)
    at = fields.Date(required=True, attribute="eligibility.at")
    eligible = fields.Boolean(required=True, attribute="eligibility.eligible")
    status = fields.String(
        required=True, validate=validate.OneOf([*STATUSES, "unknown"]), attribute="eligibility.status"
    )
    reason = fields.String(required=True, attribute="eligibility.reason")
    until = fields.Date(
        allow_none=True,
        attribute="eligibility.until",
        metadata={"description": "the day the current status ends, when known"},
    )
    barred_until = fields.Date(allow_none=True, attribute="eligibility.barred_until")
    emergency_care_settles = fields.Boolean(required=True, attribute="eligibility.emergency_care_settles")


class EligibilityQuery(BaseSchema):
    at = LegalDate(metadata={"description": "default: today (Asia/Shanghai)"})
    institution_code = fields.String(validate=CODE)


class _Codes(fields.List):
    """A list of 1–64-character strings. The batch's 1000 codes pass in one sweep; any list with
    something else in it goes through marshmallow's List, item by item, for its usual errors."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if isinstance(value, list) and all(type(c) is str and 0 < len(c) <= 64 for c in value):
            return list(value)
        return super()._deserialize(value, attr, data, **kwargs)


class EligibilityBatch(BaseSchema):
    practitioner_codes = _Codes(
        fields.String(validate=validate.Length(min=1, max=64)),
        required=True,
        validate=validate.Length(min=1, max=1000),
    )
    at = LegalDate()
    institution_code = fields.String(validate=CODE)


class EligibilityBatchRead(BaseSchema):
    results = fields.List(fields.Nested(EligibilityRead), required=True)


ROSTER_MAX_PAGE = 2000


class RosterQuery(PageArgs):
    # a settlement system syncs its whole staff at once: a page holds up to 2000, as many people as
    # two batch calls, in one query
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=ROSTER_MAX_PAGE))
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

    @ma.post_dump
    def _only_what_applies(self, data: dict, **_kwargs: Any) -> dict:
        """An entry shows the fields of its kind: a null only where the field may be null."""
        return {k: v for k, v in data.items() if v is not None or self.fields[k].allow_none}


class HistoryPage(BaseSchema):
    items = fields.List(fields.Nested(HistoryItem), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
