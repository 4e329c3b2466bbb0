"""Standing, eligibility and the person's file."""

from __future__ import annotations

from flask.views import MethodView

from ..clock import utc_now
from ..rules.calendar import local_date
from ..services import eligibility as eligibility_svc
from ..services import standing as standing_svc
from ..services.access import visible_practitioner
from ..services.history import history_page
from . import encoders
from .base import Blueprint, PageArgs, decode_cursor, encode_cursor, principal, reader, session
from .schemas.standing import (
    EligibilityBatch,
    EligibilityBatchRead,
    EligibilityQuery,
    EligibilityRead,
    HistoryPage,
    RosterPage,
    RosterQuery,
    StandingQuery,
    StandingRead,
)

blp = Blueprint(
    "standing", __name__, url_prefix="/v1", description="Standing, eligibility and history (docs/rules.md §3)"
)


@blp.route("/practitioners/<code>/standing")
class Standing(MethodView):
    @blp.requires("practitioners:read", replica=True, operation_id="getStanding")
    @blp.arguments(StandingQuery, location="query")
    @blp.response(200, StandingRead)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, args, code):
        """A practitioner's points, tier, measures and sanctions for one score year"""
        return standing_svc.read_standing(session(), principal(), code, year=args.get("year"), now=utc_now())


@blp.route("/practitioners/<code>/eligibility")
class Eligibility(MethodView):
    @blp.requires("practitioners:read", replica=True, rows_only=True, operation_id="getEligibility")
    @blp.arguments(EligibilityQuery, location="query")
    @blp.response(200, EligibilityRead)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, args, code):
        """May this person's services be settled by the fund on a day (docs/rules.md rule 18)"""
        answer = eligibility_svc.eligibility_for(
            reader(),
            principal(),
            code,
            at=args.get("at") or local_date(utc_now()),
            institution_code=args.get("institution_code"),
        )
        return encoders.one(answer)


@blp.route("/eligibility/batch")
class EligibilityBatchView(MethodView):
    @blp.requires("eligibility:batch", replica=True, rows_only=True, operation_id="getEligibilityBatch")
    @blp.arguments(EligibilityBatch)
    @blp.response(200, EligibilityBatchRead)
    @blp.alt_response(404, response="NOT_FOUND", description="An institution outside the caller's scope")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data):
        """Eligibility of up to 1000 practitioners, in request order; unknown codes answer `unknown`"""
        results = eligibility_svc.eligibility_batch(
            reader(),
            principal(),
            data["practitioner_codes"],
            at=data.get("at") or local_date(utc_now()),
            institution_code=data.get("institution_code"),
        )
        return encoders.batch(results)


@blp.route("/institutions/<code>/eligibility")
class Roster(MethodView):
    @blp.requires("roster:read", replica=True, rows_only=True, operation_id="getInstitutionRoster")
    @blp.arguments(RosterQuery, location="query")
    @blp.response(200, RosterPage)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, args, code):
        """The institution's staff registered on a day, with their eligibility there (paginated)"""
        items, last = eligibility_svc.roster(
            reader(),
            principal(),
            code,
            at=args.get("at") or local_date(utc_now()),
            after=decode_cursor(args.get("cursor"), str),
            limit=args["limit"],
        )
        return encoders.roster(items, encode_cursor(last) if last else None)


@blp.route("/practitioners/<code>/history")
class History(MethodView):
    @blp.requires("practitioners:read", operation_id="getHistory")
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, HistoryPage)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, args, code):
        """The person's file: every decision, reversal, repair, measure, sanction and registration change"""
        practitioner = visible_practitioner(session(), principal(), code)
        cursor = decode_cursor(args.get("cursor"), str)
        page = history_page(session(), principal(), practitioner, cursor=cursor, limit=args["limit"])
        return {
            "items": page.items,
            "next_cursor": encode_cursor(page.next_cursor) if page.next_cursor else None,
        }
