"""The person's file (一人一档): every entry about them, in order, with who did it and when."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..persistence import queries
from ..persistence.models import Measure, Practitioner
from .state import sanction_view, stored_state


def history_for(session: Session, practitioner: Practitioner) -> list[dict[str, Any]]:
    """Decisions, reversals, repairs, measures, sanctions and registration changes, oldest first.

    Each item has the legal date it takes effect (`on`) and, for recorded acts, the instant it was
    recorded (`at`) and by whom (`by`). Sanctions are derived by the rules, so their `by` is `rules`.
    """
    items: list[dict[str, Any]] = []
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
            item |= {"kind": "repair", "repair_id": entry.repair_id, "detail": entry.activity or ""}
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
                "detail": f"{measure.kind}: {measure.state}",
            }
        )
    state = stored_state(queries.state_by_code(session, practitioner.code))
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
    order = {
        "registration_created": 0,
        "decision": 1,
        "reversal": 2,
        "repair": 3,
        "measure": 4,
        "sanction": 5,
        "registration_ended": 6,
    }
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    items.sort(key=lambda i: (i["on"], order[i["kind"]], i["at"] or far))
    return items
