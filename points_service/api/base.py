"""The project's Blueprint and BaseSchema: auth, the request transaction and documentation in one place."""

from __future__ import annotations

import base64
import binascii
import functools
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from flask import current_app, g, request
from flask_smorest import Blueprint as SmorestBlueprint
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from webargs.flaskparser import FlaskParser

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


class Blueprint(SmorestBlueprint):
    # webargs excludes unknown query args by default, overriding the schema; let BaseSchema decide
    ARGUMENTS_PARSER = FlaskParser(unknown=None)

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Callable:
        # webargs instantiates a schema class on every request; an instance is built once
        parse = super().arguments(schema() if isinstance(schema, type) else schema, *args, **kwargs)
        if kwargs.get("location", "json") != "json":
            return parse
        # a body that is not JSON at all is a 400 problem (api.md Conventions); say so (BUG-3)
        malformed = self.alt_response(400, response="BAD_REQUEST")
        return lambda func: malformed(parse(func))

    def requires(self, permission: str, *, write: bool = False, replica: bool = False) -> Callable:
        """Authenticate, check the role, and run the view in one transaction committed at the edge.

        Placed outermost, so a missing key is 401 before the body is even parsed, and the response
        is built (and stored for Idempotency-Key replays) before the commit. `replica` marks a
        read that may be served by POINTS_DATABASE_READ_URL.
        """
        roles = ", ".join(sorted(PERMISSIONS[permission]))

        def decorator(func: Callable) -> Callable:
            func = self.alt_response(401, response="UNAUTHORIZED")(func)
            func = self.alt_response(403, response="FORBIDDEN")(func)
            func = self.doc(security=[{"bearerAuth": []}], description=f"Roles: {roles}.")(func)

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

            return wrapper

        return decorator

    def public(self, func: Callable) -> Callable:
        """An endpoint that needs no key (health checks)."""
        return self.doc(security=[])(func)


def if_match_version() -> int | None:
    """The version in an If-Match header (`"3"` or `W/"3"`), when the client sent one."""
    header = request.headers.get("If-Match")
    if header is None:
        return None
    value = header.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise RuleViolation(
            "If-Match must be an ETag this service issued", rule="api.md Repairs", field="If-Match"
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
