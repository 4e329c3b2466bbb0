"""The one hierarchy of domain errors; api/errors.py maps each to a status and a problem body."""

from __future__ import annotations

from typing import Any


class PointsServiceError(Exception):
    status = 400
    title = "Bad request"
    type_slug = "bad-request"

    def __init__(self, detail: str, *, errors: dict[str, list[str]] | None = None, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.extra = extra


class NotAuthenticated(PointsServiceError):
    status = 401
    title = "Not authenticated"
    type_slug = "not-authenticated"


class Forbidden(PointsServiceError):
    status = 403
    title = "Forbidden"
    type_slug = "forbidden"


class NotFound(PointsServiceError):
    status = 404
    title = "Not found"
    type_slug = "not-found"


class Conflict(PointsServiceError):
    status = 409
    title = "Conflict"
    type_slug = "conflict"


class DuplicateCase(Conflict):
    title = "Case already recorded with different content"
    type_slug = "duplicate-case"


class DuplicatePractitioner(Conflict):
    title = "Practitioner already exists with different data"
    type_slug = "duplicate-practitioner"


class DuplicateInstitution(Conflict):
    title = "Institution already exists with different data"
    type_slug = "duplicate-institution"


class RegistrationConflict(Conflict):
    title = "Registration conflicts with an existing one"
    type_slug = "registration-conflict"


class ReregistrationBarred(Conflict):
    title = "Re-registration is barred"
    type_slug = "reregistration-barred"


class StaleVersion(Conflict):
    title = "Stale version"
    type_slug = "stale-version"


class WorkflowConflict(Conflict):
    title = "Not allowed in the current state"
    type_slug = "workflow-conflict"


class PreconditionFailed(PointsServiceError):
    status = 412
    title = "Precondition failed"
    type_slug = "precondition-failed"


class RuleViolation(PointsServiceError):
    """The request is well-formed but a rule of docs/rules.md forbids it."""

    status = 422
    title = "Forbidden by the rules"
    type_slug = "rule-violation"

    def __init__(self, detail: str, *, rule: str, field: str | None = None, **extra: Any):
        errors = {field: [detail]} if field else None
        super().__init__(detail, errors=errors, rule=rule, **extra)


class IdempotencyKeyReused(PointsServiceError):
    status = 422
    title = "Idempotency-Key reused with a different request"
    type_slug = "idempotency-key-reused"
