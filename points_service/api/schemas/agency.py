"""The agency's desk: statistics and the public notice register."""

from __future__ import annotations

from marshmallow import fields, validate

from ...rules.identifiers import PROVINCES
from ..base import BaseSchema, PageArgs
from .fields import CODE


def _province(description: str) -> fields.String:
    return fields.String(validate=validate.OneOf(sorted(PROVINCES)), metadata={"description": description})


def _count(description: str | None = None) -> fields.Integer:
    return fields.Integer(required=True, metadata={"description": description} if description else {})


class StatisticsQuery(BaseSchema):
    year = fields.Integer(
        validate=validate.Range(min=2000, max=2200),
        metadata={"description": "the score year; default: this year"},
    )
    province = _province(
        "only this province: a region code's first two digits (13 Hebei, 63 Qinghai); an HR system may "
        "not name one (404)"
    )
    institution_code = fields.String(
        validate=CODE,
        metadata={"description": "only this institution; an HR system's own is implied, another is 404"},
    )
    format = fields.String(
        validate=validate.OneOf(["json", "csv"]),
        metadata={
            "description": "`csv` answers text/csv rows `section,key,value` (so does `Accept: text/csv`)"
        },
    )


class StatisticsTiers(BaseSchema):
    institution_talk = _count()
    agency_talk = _count()
    public_notice = _count()
    suspension = _count()
    termination = _count()


class StatisticsMeasureStates(BaseSchema):
    pending = _count()
    completed = _count()
    published = _count()
    cancelled = _count()
    withdrawn = _count()


class StatisticsMeasures(BaseSchema):
    institution_talk = fields.Nested(StatisticsMeasureStates, required=True)
    agency_talk = fields.Nested(StatisticsMeasureStates, required=True)
    public_notice = fields.Nested(StatisticsMeasureStates, required=True)


class StatisticsBands(BaseSchema):
    band_1 = fields.Integer(required=True, data_key="1", attribute="1")
    band_2 = fields.Integer(required=True, data_key="2", attribute="2")
    band_3 = fields.Integer(required=True, data_key="3", attribute="3")
    band_4 = fields.Integer(required=True, data_key="4", attribute="4")


class StatisticsRepairs(BaseSchema):
    submitted = _count("awaiting the institution's review, submitted in the year")
    institution_approved = _count("awaiting the agency's review, approved by the institution in the year")
    approved = _count("approved by the agency in the year")
    rejected = _count("rejected in the year, by the institution or the agency")
    points_repaired = _count(
        "points the agency's approvals of the year credited (the ledger's repair entries)"
    )


class StatisticsAppeals(BaseSchema):
    open = _count("filed in the year and not yet decided")
    upheld = _count("decided in the year")
    amended = _count("decided in the year")
    revoked = _count("decided in the year")


class StatisticsRead(BaseSchema):
    year = fields.Integer(required=True)
    province = fields.String(required=True, allow_none=True)
    institution_code = fields.String(
        required=True, allow_none=True, metadata={"description": "an HR system's own, when it asks"}
    )
    today = fields.Date(required=True, metadata={"description": "the day `suspended_today` is counted on"})
    decisions = _count(
        "decisions in force (not revoked; an amended one once) whose decision date is in the year, "
        "made at an institution of the scope"
    )
    points = _count("their current points")
    people_by_tier = fields.Nested(
        StatisticsTiers,
        required=True,
        metadata={"description": "each person once, at the highest tier reached in the year"},
    )
    measures = fields.Nested(
        StatisticsMeasures,
        required=True,
        metadata={"description": "the year's measure tasks by kind and state"},
    )
    suspended_today = _count("people suspended today")
    terminated_today = _count("people terminated today")
    decisions_by_band = fields.Nested(
        StatisticsBands,
        required=True,
        metadata={"description": "`decisions` by the catalogue band of the behaviour (rule 7)"},
    )
    repairs = fields.Nested(StatisticsRepairs, required=True)
    appeals = fields.Nested(StatisticsAppeals, required=True)


class NoticeQuery(PageArgs):
    year = fields.Integer(
        validate=validate.Range(min=2000, max=2200), metadata={"description": "published in this year"}
    )
    province = _province("only notices of cases that arose in this province (13 Hebei, 63 Qinghai)")


class NoticeRead(BaseSchema):
    id = fields.Integer(required=True, metadata={"description": "the measure; `measure.withdrawn` names it"})
    published_name = fields.String(required=True, metadata={"description": "the name as published"})
    institution_code = fields.String(required=True)
    institution_name = fields.String(required=True)
    behaviour_code = fields.String(required=True)
    behaviour_description = fields.String(required=True, metadata={"description": "from the catalogue"})
    points = fields.Integer(required=True, metadata={"description": "the decision's current points"})
    year = fields.Integer(required=True, metadata={"description": "the score year of the decision"})
    published_on = fields.Date(required=True)


class NoticePage(BaseSchema):
    items = fields.List(fields.Nested(NoticeRead), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
