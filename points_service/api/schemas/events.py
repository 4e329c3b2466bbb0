"""The change feed and webhook subscriptions."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from ...services.events import EVENT_TYPES
from ..base import BaseSchema


class CloudEvent(BaseSchema):
    specversion = fields.String(required=True)
    id = fields.String(
        required=True, metadata={"description": "stable: the webhook-id receivers de-duplicate on"}
    )
    source = fields.String(required=True)
    type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    subject = fields.String(allow_none=True)
    time = fields.String(required=True)
    datacontenttype = fields.String(required=True)
    sequence = fields.Integer(required=True, metadata={"description": "the feed position"})
    data = fields.Dict(required=True)


class EventQuery(BaseSchema):
    after = fields.String(load_default=None, metadata={"description": "the next_cursor of the previous page"})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    type = fields.List(fields.String(validate=validate.OneOf(EVENT_TYPES)), load_default=None)


class EventPage(BaseSchema):
    items = fields.List(fields.Nested(CloudEvent), required=True)
    next_cursor = fields.String(
        required=True, metadata={"description": "ask again with ?after= this; never null"}
    )


class WebhookCreate(BaseSchema):
    url = fields.String(
        required=True,
        validate=validate.Length(min=8, max=2000),
        metadata={"description": "https, on a public address"},
    )
    event_types = fields.List(
        fields.String(validate=validate.OneOf(EVENT_TYPES)), required=True, validate=validate.Length(min=1)
    )


class WebhookRead(BaseSchema):
    id = fields.Integer(required=True)
    url = fields.String(required=True, metadata={"description": "as stored: the host in its IDNA form"})
    event_types = fields.List(fields.String(), required=True)
    created_at = fields.AwareDateTime(required=True)
    disabled_at = fields.AwareDateTime(
        required=True,
        allow_none=True,
        metadata={"description": "when deliveries stopped because the key that created it was revoked"},
    )
    disabled_reason = fields.String(
        required=True, allow_none=True, validate=validate.OneOf(["key_revoked", "key_expired"])
    )


class WebhookCreated(WebhookRead):
    secret = fields.String(
        required=True, metadata={"description": "the signing secret (whsec_…), shown once"}
    )


class WebhookList(BaseSchema):
    items = fields.List(fields.Nested(WebhookRead), required=True)


class AttemptRead(BaseSchema):
    attempted_at = fields.AwareDateTime(required=True)
    status_code = fields.Integer(allow_none=True)
    error = fields.String(
        allow_none=True,
        metadata={"description": "unreachable, timeout, HTTP 4xx or HTTP 5xx; null when delivered"},
    )
    duration_ms = fields.Integer(required=True)


class DeliveryRead(BaseSchema):
    id = fields.Integer(required=True)
    webhook_id = fields.String(
        required=True, attribute="event.event_id", metadata={"description": "the event id sent as webhook-id"}
    )
    event_type = fields.String(required=True, attribute="event.type")
    status = fields.String(
        required=True,
        validate=validate.OneOf(["pending", "delivered", "failed", "cancelled"]),
        metadata={"description": "cancelled: the subscription was deleted or its key revoked first"},
    )
    attempts = fields.Integer(required=True)
    next_attempt_at = fields.AwareDateTime(allow_none=True, metadata={"description": "while pending"})
    delivered_at = fields.AwareDateTime(allow_none=True)
    attempt_log = fields.List(fields.Nested(AttemptRead), required=True)

    @ma.post_dump(pass_original=True)
    def _next_attempt_while_pending(self, data: dict, delivery: Any, **_kwargs: Any) -> dict:
        if delivery.status != "pending":
            data["next_attempt_at"] = None
        return data


class DeliveryQuery(BaseSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(load_default=None)


class DeliveryPage(BaseSchema):
    items = fields.List(fields.Nested(DeliveryRead), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
