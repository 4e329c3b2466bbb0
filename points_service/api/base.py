"""The project's Blueprint and BaseSchema: auth, the request transaction and documentation in one place."""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from flask import current_app, g, request
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest.utils import deepupdate
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import PreconditionRequired

from ..clock import utc_now
from ..persistence.engine import transaction
from ..persistence.pii import PiiKeys
from ..services.access import PERMISSIONS, Principal, require
from ..services.errors import NotAuthenticated, RuleViolation
from ..services.keys import LAST_USED_RESOLUTION, authenticate, touch
from ..settings import Settings

NUL = "\x00"


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, Mapping):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_holds_nul(v) for v in value)
    return False


class BaseSchema(ma.Schema):
    class Meta:
        # mass assignment and typos are refused, not ignored (unknown JSON fields and query args -> 422)
        unknown = ma.RAISE
        ordered = True

    @ma.pre_load
    def _refuse_nul(self, data: Any, **_kwargs: Any) -> Any:
        """A NUL character in any string of a body or query is a 422 at its field: PostgreSQL text
        cannot hold one, and it reached the database as a 500 (BUG-4). SQLite would store it."""
        if isinstance(data, Mapping):
            refused = {
                name: ["must not contain a NUL character"]
                for name, value in data.items()
                if _holds_nul(name) or _holds_nul(value)
            }
            if refused:
                raise ma.ValidationError(refused)
        return data


@dataclass(frozen=True)
class Runtime:
    """What views need from the app: built once by create_app."""

    settings: Settings
    # writes: one transaction each, on the primary
    sessions: sessionmaker[Session]
    pii: PiiKeys
    # reads on the primary (autocommit on PostgreSQL: persistence.engine.read_only)
    primary_reads: sessionmaker[Session]
    # a streaming replica for the hot reads (eligibility, standing, roster); None: the primary
    read_sessions: sessionmaker[Session] | None = None

    def sessions_for(self, *, write: bool, replica: bool) -> sessionmaker[Session]:
        if write:
            return self.sessions
        if replica and self.read_sessions is not None:
            return self.read_sessions
        return self.primary_reads


def runtime() -> Runtime:
    return current_app.extensions["points_service"]


def session() -> Session:
    return g.session


def principal() -> Principal:
    return g.principal


def request_id() -> str:
    rid = getattr(g, "request_id", None)
    if rid is None:
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        g.request_id = rid
    return rid


def _bearer_key() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise NotAuthenticated("send the API key as 'Authorization: Bearer <key>'")
    return key.strip()


def document(
    func: Callable,
    *,
    responses: Mapping[int, str] | None = None,
    headers: tuple[str, ...] = (),
    **manual: Any,
) -> Callable:
    """Add to a view's OpenAPI documentation in place: responses and header parameters by
    component name, and operation fields (operationId, security...). Unlike stacking
    flask-smorest's `alt_response`/`doc`, it adds no wrapper, so documentation costs no call on the
    hot path."""
    doc = copy.deepcopy(getattr(func, "_apidoc", {}))
    documented = doc.setdefault("response", {}).setdefault("responses", {})
    for status, component in (responses or {}).items():
        if component not in documented.get(status, []):
            documented.setdefault(status, []).append(component)
    if headers:
        parameters = doc.setdefault("arguments", {}).setdefault("parameters", [])
        parameters.extend(name for name in headers if name not in parameters)
    if manual:
        doc["manual_doc"] = deepupdate(doc.get("manual_doc", {}), dict(manual))
    func._apidoc = doc  # type: ignore[attr-defined]
    return func


# what any /v1 operation may answer besides its own responses, documented once here
EVERY_OPERATION = {
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    429: "RATE_LIMITED",
    503: "UNAVAILABLE",
}
# what any operation that takes a JSON body may answer besides
EVERY_BODY = {400: "BAD_REQUEST", 413: "PAYLOAD_TOO_LARGE"}

# request headers that several operations honour: components of openapi.yaml, by name
HEADER_PARAMETERS: dict[str, dict[str, Any]] = {
    "IdempotencyKey": {
        "in": "header",
        "name": "Idempotency-Key",
        "required": False,
        "description": "Any unique string of 1 to 255 characters (a UUID is fine), kept 7 days per "
        "API key. A retry with the same key and body answers the stored status and body "
        "(`Idempotent-Replayed: true`) and writes nothing again; the same key with another body is 422.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    },
    "IfMatch": {
        "in": "header",
        "name": "If-Match",
        "required": False,
        "description": "The ETag of the version you read (`\"3\"`; GET answers it). A stale one answers "
        "412 and changes nothing. Where the operation documents 428, send it or `version` in the "
        "body.",
        "schema": {"type": "string"},
    },
}


class Blueprint(SmorestBlueprint):
    # webargs excludes unknown query args by default, overriding the schema; let BaseSchema decide
    ARGUMENTS_PARSER = FlaskParser(unknown=None)

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Callable:
        # webargs instantiates a schema class on every request; an instance is built once
        parse = super().arguments(schema() if isinstance(schema, type) else schema, *args, **kwargs)
        if kwargs.get("location", "json") != "json":
            return parse
        # a body that is not JSON at all is a 400 problem (docs/api.md Conventions), and one over
        # POINTS_MAX_BODY_BYTES a 413: say so on every operation that takes a body
        return lambda func: document(parse(func), responses=EVERY_BODY)

    def requires(
        self,
        permission: str,
        *,
        operation_id: str,
        write: bool = False,
        replica: bool = False,
    ) -> Callable:
        """Authenticate, check the role, and run the view in one transaction committed at the edge.

        Placed outermost, so a missing key is 401 before the body is even parsed, and the response
        is built (and stored for Idempotency-Key replays) before the commit. `replica` marks a
        read that may be served by POINTS_DATABASE_READ_URL. `operation_id` (camelCase, a verb) is
        the name client generators give the call; the answers every key-protected operation may
        give (401, 403, 429, 503) are documented here, once.
        """
        roles = ", ".join(sorted(PERMISSIONS[permission]))

        def decorator(func: Callable) -> Callable:
            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                secret = _bearer_key()
                now = utc_now()
                rt = runtime()
                sessions = rt.sessions_for(write=write, replica=replica)
                for attempt in (1, 2):
                    try:
                        with transaction(sessions, write=write) as db:
                            g.session = db
                            g.principal = authenticate(db, secret, now=now)
                            stale = (
                                g.principal.last_used_at is None
                                or now - g.principal.last_used_at >= LAST_USED_RESOLUTION
                            )
                            require(g.principal, permission)
                            response = func(*args, **kwargs)
                        break
                    except DBAPIError as error:
                        # a read on a connection that died while pooled (the database restarted)
                        # runs once more on a fresh one; a write is never re-run here: its
                        # client retries, and case_ref or Idempotency-Key count it once
                        if write or attempt == 2 or not error.connection_invalidated:
                            raise
                if stale:
                    # its own tiny transaction on the primary, so a read stays a read (SQLite would
                    # not upgrade it, and a replica cannot write)
                    with transaction(rt.sessions, write=True) as db:
                        touch(db, g.principal.key_id, now=now)
                return response

            return document(
                wrapper,
                responses=EVERY_OPERATION,
                operationId=operation_id,
                security=[{"bearerAuth": []}],
                description=f"Roles: {roles}.",
            )

        return decorator

    def public(self, operation_id: str) -> Callable:
        """An endpoint that needs no key (health checks)."""
        return lambda func: document(func, operationId=operation_id, security=[])

    def if_match(self, *, required: bool) -> Callable:
        """Optimistic locking on a versioned record: document `If-Match` and its 412.

        With `required`, a request that sends neither `If-Match` nor a `version` in its body is
        refused with 428 Precondition Required (RFC 6585) before anything is read: a review made
        without saying which version the reviewer saw could silently overwrite another's. Placed
        under `arguments`, so the body is already valid JSON of the operation's schema.
        """

        def decorator(func: Callable) -> Callable:
            responses = {412: "PRECONDITION_FAILED"}
            if not required:
                return document(func, responses=responses, headers=("IfMatch",))

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                body = request.get_json(silent=True)
                sent_version = isinstance(body, dict) and body.get("version") is not None
                if not sent_version and "If-Match" not in request.headers:
                    raise PreconditionRequired(
                        "say which version you reviewed: send If-Match with the ETag you read, "
                        "or `version` in the body"
                    )
                return func(*args, **kwargs)

            return document(
                wrapper, responses={**responses, 428: "PRECONDITION_REQUIRED"}, headers=("IfMatch",)
            )

        return decorator


def if_match_version() -> int | None:
    """The version in an If-Match header (`"3"` or `W/"3"`), when the client sent one."""
    header = request.headers.get("If-Match")
    if header is None:
        return None
    value = header.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise RuleViolation(
            "If-Match must be an ETag this service issued", rule="docs/api.md If-Match", field="If-Match"
        )
    return int(value)


def etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    if cursor is None:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise RuleViolation(
            "cursor is not one this service issued", rule="api.md Conventions", field="cursor"
        ) from None


class PageArgs(BaseSchema):
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=500))
    cursor = ma.fields.String(load_default=None)
