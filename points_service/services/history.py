"""The person's file (一人一档): every entry about them, in order, with who did it and when."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..persistence import queries
from ..persistence.models import Appeal, Measure, Practitioner, RepairApplication
from ..rules.calendar import local_date
from .access import Actor, Principal, actor_label, key_id_of, sees
from .state import sanction_view, stored_state

# the order of entries recorded at the same instant (a decision and the measure it triggered)
HISTORY_KINDS = (
    "registration_created",
    "decision",
    "appeal_filed",
    "appeal_decided",
    "reversal",
    "repair_submitted",
    "repair_reviewed",
    "repair",
    "measure",
    "measure_completed",
    "measure_cancelled",
    "sanction",
    "registration_ended",
)


def history_for(session: Session, principal: Principal, practitioner: Practitioner) -> list[dict[str, Any]]:
    """Decisions, reversals, repairs, measures, sanctions and registration changes, oldest first.

    Each item has the legal date it takes effect (`on`) and, for recorded acts, the instant it was
    recorded (`at`) and by whom (`by`). Sanctions are derived by the rules, so their `by` is `rules`.
    The file holds only what the principal could read one by one (access.sees): a hospital sees the
    decisions made at it and what hangs on them, its own registrations, and the sanctions (national,
    rule 5); actors outside its scope are named by their role.
    """
    items: list[dict[str, Any]] = []
    state = stored_state(queries.state_by_code(session, practitioner.code))
    violations = {v.id: (v, code) for v, code in queries.violations_for(session, practitioner.id)}
    readable = {
        v.id
        for v, _ in violations.values()
        if sees(principal, practitioner=v.practitioner_id, institution=v.institution_id)
    }
    applications = list(
        session.scalars(
            select(RepairApplication)
            .where(RepairApplication.practitioner_id == practitioner.id)
            .order_by(RepairApplication.id)
        )
    )
    repairs = {
        a.id
        for a in applications
        if sees(principal, practitioner=a.practitioner_id, institution=a.institution_id)
    }
    for entry in queries.ledger_for(session, practitioner.id):
        if entry.repair_id not in repairs if entry.kind == "repair" else entry.violation_id not in readable:
            continue
        item: dict[str, Any] = {
            "on": entry.effective_on,
            "at": entry.recorded_at,
            "by": entry.recorded_by,
            "score_year": entry.score_year,
            "points": entry.points,
            "profile": entry.profile_id,
        }
        if entry.kind == "decision":
            violation, institution_code = violations[entry.violation_id]  # type: ignore[index]
            item |= {
                "kind": "decision",
                "violation_id": violation.id,
                "case_ref": violation.case_ref,
                "institution_code": institution_code,
                "behaviour_code": violation.behaviour_code,
                "detail": f"{violation.behaviour_code} ({violation.responsibility}): {entry.points} points",
            }
        elif entry.kind == "reversal":
            item |= {
                "kind": "reversal",
                "reverses_entry_id": entry.reverses_entry_id,
                "detail": entry.reason or "",
            }
        else:
            credit = next((c for c in state.repairs if c.repair_id == entry.repair_id), None)
            shortened = (
                f", term shortened by {credit.months_shortened} month(s)"
                if credit and credit.shortened
                else ""
            )
            item |= {
                "kind": "repair",
                "repair_id": entry.repair_id,
                "points": -(credit.points if credit else 0),
                "detail": f"{entry.activity}: {credit.points if credit else 0} point(s) repaired{shortened}",
            }
        items.append(item)
    for measure in session.scalars(
        select(Measure).where(Measure.practitioner_id == practitioner.id).order_by(Measure.id)
    ):
        if not sees(principal, practitioner=measure.practitioner_id, institution=measure.institution_id):
            continue
        items.append(
            {
                "kind": "measure",
                "on": measure.triggered_on,
                "at": measure.created_at,
                "by": "rules",
                "violation_id": measure.violation_id,
                "score_year": measure.year,
                "detail": f"{measure.kind} triggered; now {measure.state}",
            }
        )
        if measure.completed_at is not None:
            items.append(
                {
                    "kind": "measure_completed",
                    "on": measure.published_on or measure.completed_on,
                    "at": measure.completed_at,
                    "by": measure.completed_by,
                    "violation_id": measure.violation_id,
                    "detail": f"{measure.kind} {measure.state}: {measure.note or ''}".rstrip(": "),
                }
            )
        if measure.cancelled_at is not None:
            items.append(
                {
                    "kind": "measure_cancelled",
                    "on": local_date(measure.cancelled_at),
                    "at": measure.cancelled_at,
                    "by": "rules",
                    "violation_id": measure.violation_id,
                    "detail": f"{measure.kind} cancelled: its cause was revoked or amended",
                }
            )
    for appeal in session.scalars(
        select(Appeal).where(Appeal.practitioner_id == practitioner.id).order_by(Appeal.id)
    ):
        if appeal.violation_id not in readable:
            continue
        items.append(
            {
                "kind": "appeal_filed",
                "on": appeal.filed_on,
                "at": appeal.filed_at,
                "by": appeal.filed_by,
                "violation_id": appeal.violation_id,
                "appeal_id": appeal.id,
                "detail": f"appeal filed (deadline {appeal.deadline.isoformat()}): {appeal.reason}",
            }
        )
        if appeal.decided_on is not None:
            points = f" to {appeal.outcome_points} points" if appeal.outcome_points else ""
            items.append(
                {
                    "kind": "appeal_decided",
                    "on": appeal.decided_on,
                    "at": appeal.decided_at,
                    "by": appeal.decided_by,
                    "violation_id": appeal.violation_id,
                    "appeal_id": appeal.id,
                    "detail": f"appeal {appeal.status}{points}: {appeal.outcome_reason}",
                }
            )
    for application in applications:
        if application.id not in repairs:
            continue
        items.append(
            {
                "kind": "repair_submitted",
                "on": local_date(application.submitted_at),
                "at": application.submitted_at,
                "by": application.submitted_by,
                "repair_id": application.id,
                "detail": f"{application.activity} completed {application.completed_on.isoformat()}",
            }
        )
        if application.institution_reviewed_at is not None:
            items.append(
                {
                    "kind": "repair_reviewed",
                    "on": local_date(application.institution_reviewed_at),
                    "at": application.institution_reviewed_at,
                    "by": application.institution_reviewed_by,
                    "repair_id": application.id,
                    "detail": f"institution review: {application.institution_comment or ''}".rstrip(": "),
                }
            )
        if application.agency_reviewed_at is not None:
            items.append(
                {
                    "kind": "repair_reviewed",
                    "on": application.agency_reviewed_on,
                    "at": application.agency_reviewed_at,
                    "by": application.agency_reviewed_by,
                    "repair_id": application.id,
                    "detail": f"agency review, {application.status}: "
                    f"{application.agency_comment or ''}".rstrip(": "),
                }
            )
    for sanction in (*state.suspensions, *state.terminations):
        view = sanction_view(sanction)
        end = view.get("end") or view.get("barred_until")
        items.append(
            {
                "kind": "sanction",
                "on": sanction.start,
                "at": None,
                "by": "rules",
                "violation_id": sanction.violation_id if sanction.violation_id in readable else None,
                "score_year": sanction.year,
                "detail": f"{view['kind']} from {sanction.start.isoformat()} to {end.isoformat()} "
                f"({view['basis']})",
            }
        )
    registrations = queries.registrations_for(session, practitioner.id)
    institution_ids = {code: row.institution_id for row, code in registrations}
    for row, code in registrations:
        if not sees(principal, practitioner=practitioner.id, institution=row.institution_id):
            continue
        items.append(
            {
                "kind": "registration_created",
                "on": row.start_date,
                "at": row.created_at,
                "by": row.created_by,
                "institution_code": code,
                "detail": f"registered at {code}",
            }
        )
        if row.end_date is not None:
            items.append(
                {
                    "kind": "registration_ended",
                    "on": row.end_date,
                    "at": row.ended_at,
                    "by": row.ended_by,
                    "institution_code": code,
                    "detail": row.end_reason or "",
                }
            )
    for span in state.registrations:
        institution = institution_ids[span.institution_code]
        if span.ended_by == "termination" and span.end is not None:
            if not sees(principal, practitioner=practitioner.id, institution=institution):
                continue
            items.append(
                {
                    "kind": "registration_ended",
                    "on": span.end,
                    "at": None,
                    "by": "rules",
                    "institution_code": span.institution_code,
                    "violation_id": span.termination_violation_id
                    if span.termination_violation_id in readable
                    else None,
                    "detail": "ended by termination (docs/rules.md rule 17)",
                }
            )
    _name_actors(session, principal, items)
    order = {kind: i for i, kind in enumerate(HISTORY_KINDS)}
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    # by effective date, then by when it was recorded; derived entries (at None) close their day
    items.sort(key=lambda i: (i["on"], i["at"] or far, order[i["kind"]]))
    return items


def _name_actors(session: Session, principal: Principal, items: list[dict[str, Any]]) -> None:
    """`by` as the principal may read it (access.actor_label): key names in their scope, roles outside."""
    if principal.is_national:
        return
    keys = queries.keys_by_id(session, {k for i in items if (k := key_id_of(i["by"])) is not None})
    for item in items:
        key = keys.get(key_id_of(item["by"]))  # type: ignore[arg-type]
        actor = Actor(key.id, key.role, key.institution_id, key.practitioner_id) if key else None
        item["by"] = actor_label(principal, item["by"], actor)
