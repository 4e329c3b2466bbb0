"""The framework floor for `make bench` (issue 6): the same app, auth and serialisation as the real
reads, doing only a primary-key read or one query. Registered only with POINTS_BENCH_ENDPOINTS=1,
so production and the committed openapi.yaml never carry it."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import fields
from sqlalchemy import select

from ..clock import local_today
from ..persistence import queries
from ..persistence.models import Institution, PractitionerState, Registration
from ..persistence.sql import in_values
from .base import BaseSchema, Blueprint, session

blp = Blueprint(
    "bench", __name__, url_prefix="/bench/floor", description="Benchmark floor (not for production)"
)


class FloorRow(BaseSchema):
    practitioner_id = fields.Integer(required=True)
    practitioner_code = fields.String(required=True)
    ledger_version = fields.Integer(required=True)


class FloorBatch(BaseSchema):
    practitioner_codes = fields.List(fields.String(), required=True)


class FloorRows(BaseSchema):
    results = fields.List(fields.Nested(FloorRow), required=True)


def _row(state: PractitionerState) -> dict:
    return {
        "practitioner_id": state.practitioner_id,
        "practitioner_code": state.practitioner_code,
        "ledger_version": state.ledger_version,
    }


@blp.route("/<int:practitioner_id>")
class Floor(MethodView):
    @blp.requires("practitioners:read", replica=True, operation_id="getFloorRow")
    @blp.response(200, FloorRow)
    def get(self, practitioner_id):
        """One primary-key read, a small JSON body"""
        return _row(session().get(PractitionerState, practitioner_id))


@blp.route("/batch")
class FloorBatchView(MethodView):
    @blp.requires("eligibility:batch", replica=True, operation_id="getFloorBatch")
    @blp.arguments(FloorBatch)
    @blp.response(200, FloorRows)
    def post(self, data):
        """The same rows as a batch eligibility, read with one query and returned as they are"""
        rows = session().scalars(
            select(PractitionerState).where(
                in_values(session(), PractitionerState.practitioner_code, data["practitioner_codes"])
            )
        )
        return {"results": [_row(r) for r in rows]}


@blp.route("/roster/<code>")
class FloorRoster(MethodView):
    @blp.requires("roster:read", replica=True, operation_id="getFloorRoster")
    @blp.response(200, FloorRows)
    def get(self, code):
        """The rows of an institution's roster, read with one query and returned as they are"""
        rows = session().scalars(
            select(PractitionerState)
            .join(Registration, Registration.practitioner_id == PractitionerState.practitioner_id)
            .join(Institution, Institution.id == Registration.institution_id)
            .where(Institution.code == code, *queries.registered_on(local_today()))
            .order_by(PractitionerState.practitioner_code)
        )
        return {"results": [_row(r) for r in rows]}
