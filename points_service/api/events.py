"""The change feed and webhook subscriptions: how HR and settlement systems learn of changes."""

from __future__ import annotations

from flask.views import MethodView

from ..clock import utc_now
from ..services import events as events_svc
from ..services import webhooks as webhooks_svc
from .base import Blueprint, decode_cursor, encode_cursor, principal, request_id, runtime, session
from .schemas.events import (
    DeliveryPage,
    DeliveryQuery,
    EventPage,
    EventQuery,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
)

blp = Blueprint("events", __name__, url_prefix="/v1", description="The change feed and webhooks")


@blp.route("/events")
class Events(MethodView):
    @blp.requires("events:read", operation_id="listEvents")
    @blp.arguments(EventQuery, location="query")
    @blp.response(200, EventPage)
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, args):
        """Changes after the cursor, in order, as CloudEvents; an HR system sees its staff only"""
        after = decode_cursor(args["after"], (int, int), field="after") or (0, 0)
        events, last = events_svc.read_feed(
            session(), principal(), after=after, limit=args["limit"], types=args["type"]
        )
        return {
            "items": [events_svc.cloud_event(e) for e in events],
            "next_cursor": encode_cursor(list(last)),
        }


@blp.route("/webhooks")
class Webhooks(MethodView):
    @blp.requires("webhooks:manage", write=True, operation_id="createWebhook")
    @blp.arguments(WebhookCreate)
    @blp.response(201, WebhookCreated, headers={"Location": {"schema": {"type": "string"}}})
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data):
        """Subscribe a URL to event types; the signing secret is returned this once"""
        rt = runtime()
        created = webhooks_svc.create_subscription(
            session(),
            principal(),
            webhooks_svc.CreateSubscription(url=data["url"], event_types=tuple(data["event_types"])),
            keys=rt.pii,
            allow_private=rt.settings.webhook_allow_private,
            now=utc_now(),
            request_id=request_id(),
        )
        return created, 201, {"Location": f"/v1/webhooks/{created.id}"}

    @blp.requires("webhooks:manage", operation_id="listWebhooks")
    @blp.response(200, WebhookList)
    def get(self):
        """The caller's subscriptions"""
        return {"items": webhooks_svc.list_subscriptions(session(), principal())}


@blp.route("/webhooks/<int:webhook_id>")
class WebhookById(MethodView):
    @blp.requires("webhooks:manage", write=True, operation_id="deleteWebhook")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, webhook_id):
        """Stop deliveries to this subscription (its delivery log is kept)"""
        webhooks_svc.delete_subscription(
            session(), principal(), webhook_id, now=utc_now(), request_id=request_id()
        )


@blp.route("/webhooks/<int:webhook_id>/deliveries")
class Deliveries(MethodView):
    @blp.requires("webhooks:manage", operation_id="listWebhookDeliveries")
    @blp.arguments(DeliveryQuery, location="query")
    @blp.response(200, DeliveryPage)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def get(self, args, webhook_id):
        """Every delivery to the subscription with each attempt: time, status code, error"""
        items, last = webhooks_svc.deliveries_of(
            session(),
            principal(),
            webhook_id,
            after=decode_cursor(args["cursor"], int),
            limit=args["limit"],
        )
        return {"items": items, "next_cursor": encode_cursor(last) if last else None}
