"""Work lists for people: what waits for a reviewer, a hospital or an inspector, and the names
beside the codes in them.

Each list is scoped by access.sees, the predicate every single read uses, so a list never shows
what its rows' own reads would refuse (docs/api.md Authentication and roles). Rows come back as the
single reads answer them (violations.Decision, repairs.Repair), their parties loaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, aliased, joinedload, selectinload

from ..persistence.models import Appeal, Measure, Practitioner, Registration, RepairApplication, Violation
from .access import Principal, require, sees
from .repairs import Repair, with_credits
from .violations import Decision, decision_from


@dataclass(frozen=True)
class DecisionRow:
    """A decision as it stands, its person and institution loaded, with its appeal if one was filed."""

    decision: Decision
    appeal: Appeal | None


def _decisions(principal: Principal) -> Select:
    return (
        select(Violation, Appeal)
        .options(
            joinedload(Violation.practitioner),
            joinedload(Violation.institution),
            selectinload(Violation.entries),
        )
        .outerjoin(Appeal, Appeal.violation_id == Violation.id)
        .where(sees(principal, practitioner=Violation.practitioner_id, institution=Violation.institution_id))
    )


def _rows(session: Session, query: Select) -> list[DecisionRow]:
    return [DecisionRow(decision_from(v), a) for v, a in session.execute(query).unique().all()]


def open_appeals(session: Session, principal: Principal, *, limit: int) -> list[DecisionRow]:
    """Appeals not yet decided, the one closest to its deadline first (rule 23); an appeal is
    visible as its decision is (services.appeals.get_appeal)."""
    require(principal, "appeals:read")
    query = _decisions(principal).where(Appeal.status == "open").order_by(Appeal.deadline, Appeal.id)
    return _rows(session, query.limit(limit))


def decisions_about(session: Session, principal: Principal, practitioner_code: str) -> list[DecisionRow]:
    """The decisions about one person that the principal may read, newest first."""
    require(principal, "violations:read")
    query = (
        _decisions(principal)
        .join(Practitioner, Practitioner.id == Violation.practitioner_id)
        .where(Practitioner.code == practitioner_code)
        .order_by(Violation.decided_on.desc(), Violation.id.desc())
    )
    return _rows(session, query)


def decisions_recorded_by(session: Session, principal: Principal, *, limit: int) -> list[DecisionRow]:
    """The decisions this key posted, newest first: what an inspection team sent."""
    require(principal, "violations:write")
    query = (
        _decisions(principal)
        .where(Violation.created_by == principal.actor)
        .order_by(Violation.created_at.desc(), Violation.id.desc())
    )
    return _rows(session, query.limit(limit))


def repair_queue(
    session: Session,
    principal: Principal,
    *,
    status: str | None,
    practitioner_code: str | None = None,
    limit: int,
) -> list[Repair]:
    """Repair applications with their credits, oldest first; by status, `submitted` ones wait for
    the institution and `institution_approved` ones for the agency (rule 19)."""
    require(principal, "repairs:read")
    query = (
        select(RepairApplication)
        .options(joinedload(RepairApplication.practitioner), joinedload(RepairApplication.institution))
        .where(
            sees(
                principal,
                practitioner=RepairApplication.practitioner_id,
                institution=RepairApplication.institution_id,
            ),
        )
        .order_by(RepairApplication.submitted_at, RepairApplication.id)
        .limit(limit)
    )
    if status is not None:
        query = query.where(RepairApplication.status == status)
    if practitioner_code is not None:
        query = query.where(
            RepairApplication.practitioner_id.in_(
                select(Practitioner.id).where(Practitioner.code == practitioner_code)
            )
        )
    return with_credits(session, list(session.scalars(query)))


def measures_about(session: Session, principal: Principal, practitioner_id: int) -> list[Measure]:
    """Every measure task of one person the principal may see, ended ones included, by id."""
    require(principal, "practitioners:read")
    return list(
        session.scalars(
            select(Measure)
            .where(
                Measure.practitioner_id == practitioner_id,
                sees(principal, practitioner=Measure.practitioner_id, institution=Measure.institution_id),
            )
            .order_by(Measure.id)
        )
    )


def names_of(session: Session, principal: Principal, codes: Iterable[str]) -> dict[str, str]:
    """Names of the people with these codes whom the principal may see: the agency everyone, a
    hospital the people who hold or held a registration there, a person themself."""
    require(principal, "practitioners:read")
    wanted = set(codes)
    if not wanted:
        return {}
    query = select(Practitioner.code, Practitioner.name).where(Practitioner.code.in_(wanted))
    if not principal.is_national:
        registration = aliased(Registration)
        visible = select(registration.id).where(
            registration.practitioner_id == Practitioner.id,
            sees(
                principal, practitioner=registration.practitioner_id, institution=registration.institution_id
            ),
        )
        query = query.where(
            Practitioner.id == principal.practitioner_id
            if principal.role == "practitioner"
            else visible.exists()
        )
    return {code: name for code, name in session.execute(query)}
