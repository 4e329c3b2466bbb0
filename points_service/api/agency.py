"""The agency's desk: its statistics, and the public notice register (docs/api.md)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from flask import Response, request
from flask.views import MethodView

from ..clock import utc_now
from ..rules.calendar import local_date
from ..services import notices as notices_svc
from ..services import statistics as statistics_svc
from ..services.errors import RuleViolation
from .base import Blueprint, decode_cursor, encode_cursor, principal, runtime, session
from .schemas.agency import NoticePage, NoticeQuery, StatisticsQuery, StatisticsRead

blp = Blueprint(
    "agency", __name__, url_prefix="/v1", description="The agency's statistics and the public notice register"
)

CSV = "text/csv"
CSV_COLUMNS = ("section", "key", "value")
VARY = {"Vary": "Accept"}


def _wants_csv(args: dict[str, Any]) -> bool:
    """`?format=` decides; without it, an Accept that prefers text/csv to JSON does."""
    if args.get("format") is not None:
        return args["format"] == "csv"
    return request.accept_mimetypes.best_match(["application/json", CSV]) == CSV


def statistics_rows(figures: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """The JSON answer as CSV rows, one per figure: `scope` rows name the filters, then `section` is
    the JSON member and `key` the path inside it (`total` for a plain number, `kind.state` for
    measures)."""
    rows: list[tuple[str, str, Any]] = [
        ("scope", key, "" if figures[key] is None else figures[key])
        for key in ("year", "province", "institution_code", "today")
    ]
    for section, value in figures.items():
        if section in ("year", "province", "institution_code", "today"):
            continue
        if not isinstance(value, dict):
            rows.append((section, "total", value))
            continue
        for key, inner in value.items():
            if isinstance(inner, dict):
                rows.extend((section, f"{key}.{name}", number) for name, number in inner.items())
            else:
                rows.append((section, key, inner))
    return rows


def _csv_answer(figures: dict[str, Any]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(CSV_COLUMNS)
    writer.writerows(statistics_rows(figures))
    name = "-".join(
        str(part)
        for part in ("statistics", figures["year"], figures["province"], figures["institution_code"])
        if part
    )
    return Response(
        out.getvalue(),
        mimetype=CSV,
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"', **VARY},
    )


@blp.route("/statistics")
class Statistics(MethodView):
    # aggregates over the whole registry: a standby takes them off the primary, and a figure a few
    # milliseconds behind is as good to the agency
    @blp.requires("statistics:read", replica=True, operation_id="getStatistics")
    @blp.arguments(StatisticsQuery, location="query")
    @blp.response(200, StatisticsRead, headers={"Vary": {"schema": {"type": "string"}}})
    @blp.alt_response(404, response="NOT_FOUND", description="An institution outside the caller's scope")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    @blp.alt_response(
        200,
        schema={"type": "string"},
        content_type=CSV,
        success=True,
        example="section,key,value\r\nscope,year,2026\r\n…\r\ndecisions,total,12\r\n"
        "people_by_tier,agency_talk,3\r\nmeasures,public_notice.published,1\r\n",
        description="The figures: JSON, or with `format=csv` (or `Accept: text/csv`) the same figures as "
        "CSV rows `section,key,value` (docs/api.md Statistics)",
        headers={"Content-Disposition": {"schema": {"type": "string"}, "description": "CSV only"}},
    )
    def get(self, args):
        """The agency's figures for a score year: decisions, points, people by tier, measures, people
        suspended and terminated today, decisions by band, repairs and appeals (JSON or CSV)"""
        today = local_date(utc_now())
        scope = statistics_svc.resolve_scope(
            session(),
            principal(),
            year=args.get("year", today.year),
            province=args.get("province"),
            institution_code=args.get("institution_code"),
        )
        figures = statistics_svc.statistics(
            session(), principal(), scope, policies=runtime().settings.policies, today=today
        )
        if _wants_csv(args):
            # the same figures as the JSON answer, dumped by its schema, one row each
            return _csv_answer(StatisticsRead().dump(figures))
        return figures, VARY


def _notice_cursor(cursor: str | None) -> tuple[int, int] | None:
    position = decode_cursor(cursor, (int, int))
    if position is not None and not 1 <= position[0] <= dt.date.max.toordinal():
        raise RuleViolation(
            "cursor is not a cursor this service issued", rule="docs/api.md Conventions", field="cursor"
        )
    return position


@blp.route("/notices")
class Notices(MethodView):
    @blp.requires("notices:read", operation_id="listNotices")
    @blp.arguments(NoticeQuery, location="query")
    @blp.response(200, NoticePage)
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, args):
        """The public notice register (通报): published notices, newest first; withdrawn ones are gone
        (paginated; every role, as on the agency's website)"""
        page, last = notices_svc.list_notices(
            session(),
            principal(),
            year=args.get("year"),
            province=args.get("province"),
            after=_notice_cursor(args.get("cursor")),
            limit=args["limit"],
            policies=runtime().settings.policies,
        )
        return {
            "items": [
                {
                    "id": n.id,
                    "published_name": n.published_name,
                    "institution_code": n.institution_code,
                    "institution_name": n.institution_name,
                    "behaviour_code": n.behaviour_code,
                    "behaviour_description": n.behaviour_text,
                    "points": n.points,
                    "year": n.year,
                    "published_on": n.published_on,
                }
                for n in page
            ],
            "next_cursor": encode_cursor(list(last)) if last else None,
        }
