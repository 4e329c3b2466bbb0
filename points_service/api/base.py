"""The project's Blueprint and BaseSchema: auth, the request transaction and documentation in one place."""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import functools
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from flask import current_app, g, request
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest.utils import deepupdate
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from webargs.core import missing
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import PreconditionRequired

from ..clock import utc_now
from ..persistence.engine import Reader, reading, transaction
from ..persistence.pii import PiiKeys
from ..rules.identifiers import text_problem
from ..services.access import PERMISSIONS, Principal, require
from ..services.errors import NotAuthenticated, RuleViolation
from ..services.keys import LAST_USED_RESOLUTION, authenticate, touch
from ..settings import Settings

# a body nested deeper than this is refused before anything walks it: Python's recursion (the JSON
# decoder's, marshmallow's) would otherwise end in a RecursionError, a 500
MAX_JSON_DEPTH = 32


def load_json(data: bytes | str) -> Any:
    """Parse a request body, refusing what the service cannot process as malformed (a 400)."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    try:
        value = json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError(f"nested more than {MAX_JSON_DEPTH} levels deep", text, 0) from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise json.JSONDecodeError(f"nested more than {MAX_JSON_DEPTH} levels deep", text, 0)
    return value


class JSONProvider(DefaultJSONProvider):
    """Flask's own JSON parsing (`request.get_json`, as the Idempotency-Key fingerprint uses it)
    refuses the same bodies the argument parser does."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return load_json(s)


def _depth(value: Any) -> int:
    """How deeply containers nest in a parsed JSON value, walked without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            if depth <= MAX_JSON_DEPTH:
                stack.extend((v, depth + 1) for v in item)
    return deepest


def _unstorable(value: Any) -> bool:
    """A NUL or an unpaired surrogate anywhere in a value: neither can be stored or encoded (PostgreSQL
    text refuses NUL, UTF-8 refuses surrogates), so each is a 422 at its field, never a 500."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if text_problem(item) is not None:
                return True
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


class BaseSchema(ma.Schema):
    class Meta:
        # mass assignment and typos are refused, not ignored (unknown JSON fields and query args -> 422)
        unknown = ma.RAISE
        ordered = True

    @ma.pre_load
    def _refuse_unstorable(self, data: Any, **_kwargs: Any) -> Any:
        if isinstance(data, Mapping):
            refused = {
                str(name).encode("utf-8", "backslashreplace").decode(): [
                    "must not contain a NUL character or an unpaired UTF-16 surrogate"
                ]
                for name, value in data.items()
                if _unstorable(name) or _unstorable(value)
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


def reader() -> Reader:
    """What a rows-only read (`requires(..., rows_only=True)`) runs on: a Core connection."""
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


class Parser(FlaskParser):
    def _raw_load_json(self, req: Any) -> Any:
        if not is_json_request(req):
            return missing
        return load_json(req.get_data(cache=True))


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
        "description": 'The ETag of the version you read (`"3"`; GET answers it). A stale one answers '
        "412 and changes nothing. Where the operation documents 428, send it or `version` in the "
        "body.",
        "schema": {"type": "string"},
    },
}


class Blueprint(SmorestBlueprint):
    # webargs excludes unknown query args by default, overriding the schema; let BaseSchema decide
    ARGUMENTS_PARSER = Parser(unknown=None)

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Callable:
        # webargs instantiates a schema class on every request; an instance is built once
        instance = schema() if isinstance(schema, type) else schema
        parse = super().arguments(instance, *args, **kwargs)
        if kwargs.get("location", "json") == "query":
            return lambda func: _without_empty_query(parse(func), func, instance)
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
        rows_only: bool = False,
    ) -> Callable:
        """Authenticate, check the role, and run the view in one transaction committed at the edge.

        Placed outermost, so a missing key is 401 before the body is even parsed, and the response
        is built (and stored for Idempotency-Key replays) before the commit. `replica` marks a
        read that may be served by POINTS_DATABASE_READ_URL; `rows_only`, a read that builds no ORM
        object, run on a Core connection (`reader()`, persistence.engine.reading) rather than in a
        Session. `operation_id` (camelCase, a verb) is the name client generators give the call;
        the answers every key-protected operation may give (401, 403, 429, 503) are documented
        here, once.
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
                        opened = reading(sessions) if rows_only else transaction(sessions, write=write)
                        with opened as db:
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
                        touch(db, secret, g.principal, now=now)
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


# what an empty query may parse to and be handed to a view as is, a copy per request
_CONSTANT = (str, int, float, bool, type(None), dt.date, tuple, frozenset)


def _without_empty_query(parsed: Callable, view: Callable, schema: ma.Schema) -> Callable:
    """`parsed` (the view behind webargs) for a request with a query string; without one, the view
    with what the schema loads from nothing, loaded once here.

    A hot read is asked almost always without a query (an eligibility GET for today), and webargs
    parsing nothing cost a twentieth of such a request. A schema that loads nothing differently at
    different times (a callable default, a required field, a mutable default) is always parsed.
    """
    if any(callable(field.load_default) for field in schema.fields.values()):
        return parsed
    try:
        empty = schema.load({})
    except ma.ValidationError:
        return parsed
    if not isinstance(empty, dict) or not all(isinstance(v, _CONSTANT) for v in empty.values()):
        return parsed

    @functools.wraps(parsed)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if request.query_string:
            return parsed(*args, **kwargs)
        # as webargs hands it: after the other positional arguments
        return view(*args, dict(empty), **kwargs)

    return wrapper


def if_match_version() -> int | None:
    """The version in an If-Match header (`"3"` or `W/"3"`), when the client sent one."""
    header = request.headers.get("If-Match")
    if header is None:
        return None
    value = header.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise RuleViolation(
            "If-Match must be an ETag this service issued",
            rule="docs/api.md Versions, ETag and If-Match",
            field="If-Match",
        )
    return int(value)


def etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


BIGINT_MAX = 2**63 - 1
CursorShape = type[int] | type[str] | tuple[type[int], type[int]]


def decode_cursor(cursor: str | None, shape: CursorShape, *, field: str = "cursor") -> Any:
    """The position in a cursor this service issued: an id (`int`), a code (`str`) or a feed position
    (`(int, int)`). Anything else, ids outside BIGINT included, is a 422 naming the field: a forged
    number must not reach the database, where it would overflow."""
    if cursor is None:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        value = None
    parts = value if isinstance(shape, tuple) and isinstance(value, list) else [value]
    types = shape if isinstance(shape, tuple) else (shape,)
    if len(parts) == len(types) and all(_fits(v, t) for v, t in zip(parts, types, strict=True)):
        return tuple(parts) if isinstance(shape, tuple) else parts[0]
    raise RuleViolation(
        f"{field} is not a cursor this service issued", rule="docs/api.md Conventions", field=field
    )


def _fits(value: Any, kind: type) -> bool:
    if kind is int:
        return type(value) is int and 0 <= value <= BIGINT_MAX
    return isinstance(value, str) and 0 < len(value) <= 64 and value.isprintable()


class PageArgs(BaseSchema):
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=500))
    cursor = ma.fields.String(load_default=None)
