"""The person's file (一人一档): every entry about them, in order, with who did it and when."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..persistence import queries
from ..persistence.models import Appeal, Measure, Practitioner, RepairApplication
from ..rules.calendar import local_date
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


def history_for(session: Session, practitioner: Practitioner) -> list[dict[str, Any]]:
    """Decisions, reversals, repairs, measures, sanctions and registration changes, oldest first.

    Each item has the legal date it takes effect (`on`) and, for recorded acts, the instant it was
    recorded (`at`) and by whom (`by`). Sanctions are derived by the rules, so their `by` is `rules`.
    """
    items: list[dict[str, Any]] = []
    state = stored_state(queries.state_by_code(session, practitioner.code))
    violations = {v.id: (v, code) for v, code in queries.violations_for(session, practitioner.id)}
    for entry in queries.ledger_for(session, practitioner.id):
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
    for application in session.scalars(
        select(RepairApplication)
        .where(RepairApplication.practitioner_id == practitioner.id)
        .order_by(RepairApplication.id)
    ):
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
                "violation_id": sanction.violation_id,
                "score_year": sanction.year,
                "detail": f"{view['kind']} from {sanction.start.isoformat()} to {end.isoformat()} "
                f"({view['basis']})",
            }
        )
    for row, code in queries.registrations_for(session, practitioner.id):
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
        if span.ended_by == "termination" and span.end is not None:
            items.append(
                {
                    "kind": "registration_ended",
                    "on": span.end,
                    "at": None,
                    "by": "rules",
                    "institution_code": span.institution_code,
                    "violation_id": span.termination_violation_id,
                    "detail": "ended by termination (policy.md rule 17)",
                }
            )
    order = {kind: i for i, kind in enumerate(HISTORY_KINDS)}
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    # by effective date, then by when it was recorded; derived entries (at None) close their day
    items.sort(key=lambda i: (i["on"], i["at"] or far, order[i["kind"]]))
    return items
