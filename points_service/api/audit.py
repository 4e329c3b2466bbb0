"""The audit trail (admin and reviewer)."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import fields, validate

from ..services.audit_log import read_audit
from .base import BaseSchema, Blueprint, PageArgs, decode_cursor, encode_cursor, principal, session
from .schemas.fields import Instant

blp = Blueprint("audit", __name__, url_prefix="/v1", description="Who did what, when")


class AuditQuery(PageArgs):
    actor = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "part of the actor, e.g. a key id `key:12:` or its name"},
    )
    object = fields.String(
        validate=validate.Length(min=1, max=140),
        metadata={"description": "`type` or `type/id`, e.g. `violation/12`"},
    )
    since = Instant(metadata={"description": "RFC 3339 instant"})


class AuditRead(BaseSchema):
    id = fields.Integer(required=True)
    at = fields.AwareDateTime(required=True)
    actor = fields.String(required=True)
    role = fields.String(required=True)
    action = fields.String(required=True)
    object_type = fields.String(required=True)
    object_id = fields.String(required=True)
    request_id = fields.String(allow_none=True)
    digest = fields.String(required=True, metadata={"description": "SHA-256 of the canonical change"})
    detail = fields.Dict(required=True, metadata={"description": "the change; national IDs only masked"})


class AuditPage(BaseSchema):
    items = fields.List(fields.Nested(AuditRead), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


@blp.route("/audit")
class Audit(MethodView):
    @blp.requires("audit:read", operation_id="listAuditEvents")
    @blp.arguments(AuditQuery, location="query")
    @blp.response(200, AuditPage)
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, args):
        """Every write, oldest first: actor, role, action, object, time, request id, digest"""
        rows, last = read_audit(
            session(),
            principal(),
            actor=args.get("actor"),
            object_ref=args.get("object"),
            since=args.get("since"),
            after=decode_cursor(args.get("cursor"), int),
            limit=args["limit"],
        )
        return {"items": rows, "next_cursor": encode_cursor(last) if last else None}
