"""Who may do what: the principal, the role -> permission table and scope checks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from .errors import Forbidden

# api.md "Auth" and each section's "who" column.
PERMISSIONS: dict[str, frozenset[str]] = {
    "institutions:write": frozenset({"admin"}),
    "institutions:read": frozenset({"admin", "inspector", "reviewer", "hr_system", "practitioner"}),
    # the registry of persons is the agency's: an HR system registers an existing person, it does
    # not create one (a create would tell it which codes and national IDs exist)
    "practitioners:write": frozenset({"admin"}),
    "practitioners:read": frozenset({"admin", "inspector", "reviewer", "hr_system", "practitioner"}),
    "registrations:write": frozenset({"admin", "hr_system"}),
    "violations:write": frozenset({"admin", "inspector"}),
    "violations:read": frozenset({"admin", "inspector", "reviewer", "hr_system", "practitioner"}),
    "eligibility:batch": frozenset({"admin", "inspector", "reviewer", "hr_system"}),
    "roster:read": frozenset({"admin", "reviewer", "hr_system"}),
    "policy:read": frozenset({"admin", "inspector", "reviewer", "hr_system", "practitioner"}),
    "repairs:submit": frozenset({"admin", "hr_system", "practitioner"}),
    "repairs:read": frozenset({"admin", "inspector", "reviewer", "hr_system", "practitioner"}),
    "repairs:institution_review": frozenset({"admin", "hr_system"}),
    "repairs:agency_review": frozenset({"reviewer"}),
    "appeals:file": frozenset({"admin", "practitioner"}),
    "appeals:read": frozenset({"admin", "inspector", "reviewer", "hr_system", "practitioner"}),
    "appeals:decide": frozenset({"reviewer"}),
    "measures:read": frozenset({"admin", "reviewer", "hr_system"}),
    "measures:complete": frozenset({"admin", "reviewer", "hr_system"}),
    "events:read": frozenset({"admin", "inspector", "reviewer", "hr_system", "practitioner"}),
    "webhooks:manage": frozenset({"admin", "reviewer", "hr_system"}),
    "audit:read": frozenset({"admin", "reviewer"}),
}

NATIONAL_ROLES = frozenset({"admin", "inspector", "reviewer"})


@dataclass(frozen=True)
class Principal:
    key_id: int
    name: str
    role: str
    institution_id: int | None = None
    institution_code: str | None = None
    practitioner_id: int | None = None
    practitioner_code: str | None = None
    last_used_at: dt.datetime | None = field(default=None, compare=False)

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}:{self.name}"

    @property
    def is_national(self) -> bool:
        return self.role in NATIONAL_ROLES


def require(principal: Principal, permission: str) -> None:
    if principal.role not in PERMISSIONS[permission]:
        raise Forbidden(f"role {principal.role} may not {permission.replace(':', ' ')}")
