"""Who may do what: the principal, the role -> permission table and scope checks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, false, select, true
from sqlalchemy.orm import QueryableAttribute, Session

from ..persistence import queries
from ..persistence.models import Practitioner, Violation
from .errors import Forbidden, NotFound

# docs/api.md "Auth" and each section's "who" column.
PERMISSIONS: dict[str, frozenset[str]] = {
    "institutions:write": frozenset({"admin"}),
    "institutions:read": frozenset({"admin", "inspector", "reviewer", "hr_system", "practitioner"}),
    # the registry of persons is the agency's: an HR system registers an existing person, it does
    # not create one (a create would tell it which codes and national IDs exist)
    "practitioners:write": frozenset({"admin"}),
    "practitioners:read": frozenset({"admin", "inspector", "reviewer", "hr_system", "practitioner"}),
    "registrations:write": frozenset({"admin", "hr_system"}),
    "violations:write": frozenset({"admin", "inspector"}),
    # what a decision would bring, recording nothing: the agency's desk
    "violations:preview": frozenset({"admin", "inspector", "reviewer"}),
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
    # the agency's desk: its figures (an HR system's for its own institution only), and the public
    # notice register, which is public information
    "statistics:read": frozenset({"admin", "reviewer", "hr_system"}),
    "notices:read": frozenset({"admin", "inspector", "reviewer", "hr_system", "practitioner"}),
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
    expires_at: dt.datetime | None = field(default=None, compare=False)

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}:{self.name}"

    @property
    def is_national(self) -> bool:
        return self.role in NATIONAL_ROLES


def require(principal: Principal, permission: str) -> None:
    if principal.role not in PERMISSIONS[permission]:
        raise Forbidden(f"role {principal.role} may not {permission.replace(':', ' ')}")


def sees(principal: Principal, *, practitioner: Any, institution: Any) -> Any:
    """May the principal see an object about this person that arose at this institution?

    The one scope rule (docs/api.md Authentication and roles; docs/decisions.md): the agency's
    roles see everything, a person their own file, an HR system what arose at its institution (its
    decisions and what hangs on them, its registrations, the repairs it reviews). Eligibility,
    status and bars are national and do not ask this. Written once for both uses: given a loaded
    object's ids it answers True or False; given columns, `==` builds a list's WHERE clause, so a
    list shows exactly what the single reads show.
    """
    column = any(isinstance(v, (ColumnElement, QueryableAttribute)) for v in (practitioner, institution))
    if principal.is_national:
        return true() if column else True
    if principal.role == "practitioner":
        return practitioner == principal.practitioner_id
    if principal.role == "hr_system":
        return institution == principal.institution_id
    return false() if column else False


# how an actor outside the reader's scope is named (docs/api.md: "actors outside it named by role only")
ROLE_LABELS = {
    "admin": "agency",
    "inspector": "agency",
    "reviewer": "agency",
    "hr_system": "another institution",
    "practitioner": "the practitioner",
}


@dataclass(frozen=True)
class Actor:
    """Who recorded something: the key's id, role and binding, as the audit columns name it."""

    key_id: int | None
    role: str | None
    institution_id: int | None = None
    practitioner_id: int | None = None


def actor_label(principal: Principal, recorded_by: str | None, actor: Actor | None) -> str | None:
    """`recorded_by` as this principal may read it: the agency reads every key's name; anyone else
    reads the names of keys in their own scope and a role for the rest."""
    if recorded_by is None or recorded_by == "rules" or principal.is_national:
        return recorded_by
    if actor is None or actor.role is None:
        return "agency"  # a command-line import or a system job
    own = (
        actor.key_id == principal.key_id
        or (principal.role == "hr_system" and actor.institution_id == principal.institution_id)
        or (principal.role == "practitioner" and actor.practitioner_id == principal.practitioner_id)
    )
    if own:
        return recorded_by
    if actor.role == "hr_system" and principal.role == "practitioner":
        return "institution"
    return ROLE_LABELS[actor.role]


def key_id_of(recorded_by: str | None) -> int | None:
    """The key id in a `key:<id>:<name>` actor string (Principal.actor), else None."""
    if recorded_by is None or not recorded_by.startswith("key:"):
        return None
    ident = recorded_by.split(":", 2)[1]
    return int(ident) if ident.isdigit() else None


# -- the same rule, asked of the database ---------------------------------------------------------


def readable_violations(session: Session, principal: Principal, violation_ids: Sequence[int]) -> set[int]:
    """Which of these decisions the principal may read (access.sees), in one query."""
    if principal.is_national or not violation_ids:
        return set(violation_ids)
    return set(
        session.scalars(
            select(Violation.id).where(
                Violation.id.in_(set(violation_ids)),
                sees(principal, practitioner=Violation.practitioner_id, institution=Violation.institution_id),
            )
        )
    )


def visible_practitioner(session: Session, principal: Principal, code: str) -> Practitioner:
    """The person, if the caller may see them; otherwise 404 so existence does not leak."""
    require(principal, "practitioners:read")
    practitioner = queries.practitioner_by_code(session, code)
    if practitioner is None or not may_see_practitioner(session, principal, practitioner.id):
        raise NotFound(f"no practitioner {code}")
    return practitioner


def may_see_practitioner(session: Session, principal: Principal, practitioner_id: int) -> bool:
    if principal.is_national:
        return True
    if principal.role == "practitioner":
        return principal.practitioner_id == practitioner_id
    if principal.role == "hr_system":
        assert principal.institution_id is not None
        return queries.is_registered_at(session, practitioner_id, principal.institution_id)
    return False
