"""What-if preview (the agency's desk): POST /v1/violations/preview answers what recording a
decision would bring — points, profile, the standing after it and what it triggers — and records
nothing. It runs the very code of a real post (inside a savepoint that is rolled back), so a later
real post of the same body answers the same standing and triggered parts."""

from __future__ import annotations

import pytest
from factories import code, make_key
from sqlalchemy import func, select

from points_service.clock import local_today
from points_service.persistence.models import (
    AuditEvent,
    LedgerEntry,
    Measure,
    OutboxEvent,
    PractitionerState,
    Violation,
)

TABLES = (Violation, LedgerEntry, OutboxEvent, AuditEvent, Measure, PractitionerState)


def _counts(session) -> dict[str, int]:
    return {t.__tablename__: session.scalar(select(func.count()).select_from(t)) for t in TABLES}


def _snapshot(session, person: str) -> tuple:
    row = session.scalar(select(PractitionerState).where(PractitionerState.practitioner_code == person))
    session.refresh(row)
    return (row.state, row.announced_status, row.ledger_version, row.next_transition_on)


def _body(person: str, hospital: str, **extra) -> dict:
    today = local_today().isoformat()
    return {
        "practitioner_code": person,
        "institution_code": hospital,
        "behaviour_code": "B3-01",
        "responsibility": "main",
        "occurred_on": today,
        "decided_on": today,
        **extra,
    }


def _without_ids(value):
    """The parts a preview and the real post share: everything but the ids of new records."""
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k not in ("id", "violation_id")}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def test_a_preview_answers_what_the_decision_would_bring_and_records_nothing(session, admin, inspector):
    person, hospital = admin.person()
    inspector.violation(person, hospital, behaviour_code="B1-99", responsibility="main")  # 3 points
    before, snapshot = _counts(session), _snapshot(session, person)

    preview = inspector.post("/v1/violations/preview", _body(person, hospital), status=200)

    assert (preview["points"], preview["profile"], preview["id"], preview["case_ref"]) == (
        9,
        "hebei-2025",
        None,
        None,
    )
    # 3 + 9 = 12 in the year: termination with a 1-year bar (rule 12: the more severe outcome)
    assert preview["standing"]["points_total"] == 12
    assert preview["standing"]["tier"] == "termination"
    assert [(t["type"], t["kind"], t["violation_id"]) for t in preview["triggered"]] == [
        ("sanction", "termination", None)
    ]
    assert _counts(session) == before
    assert _snapshot(session, person) == snapshot


def test_a_later_real_post_answers_the_previews_standing_and_triggered(session, admin, inspector, reviewer):
    person, hospital = admin.person()
    inspector.violation(person, hospital, behaviour_code="B2-01")  # 4 points: an agency talk
    body = _body(person, hospital, behaviour_code="B1-99", responsibility="important")  # +2 = 6
    preview = reviewer.post("/v1/violations/preview", body, status=200)
    real = inspector.post("/v1/violations", {**body, "case_ref": code("CASE-")})
    assert _without_ids(preview["standing"]) == _without_ids(real["standing"])
    assert _without_ids(preview["triggered"]) == _without_ids(real["triggered"])
    assert preview["points"] == real["points"] == 2


def test_a_preview_triggering_a_measure_names_no_ids(admin, inspector):
    person, hospital = admin.person()
    preview = inspector.post(
        "/v1/violations/preview", _body(person, hospital, behaviour_code="B2-01"), status=200
    )
    [measure] = preview["triggered"]
    assert (measure["type"], measure["kind"], measure["id"], measure["violation_id"]) == (
        "measure",
        "agency_talk",
        None,
        None,
    )
    assert preview["standing"]["measures"] == [{k: v for k, v in measure.items() if k != "type"}]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"decided_on": "2999-01-01"}, "decided_on"),
        ({"behaviour_code": "B9-99"}, "behaviour_code"),
        ({"points": 12, "behaviour_code": "B1-01"}, "points"),
        ({"adjustment": "mitigated"}, "adjustment_reason"),
    ],
)
def test_a_preview_refuses_what_a_post_refuses_with_the_same_answer(client, admin, inspector, change, field):
    person, hospital = admin.person()
    body = _body(person, hospital, **change)
    preview = client.post("/v1/violations/preview", json=body, headers=inspector.headers)
    post = client.post("/v1/violations", json={**body, "case_ref": code("CASE-")}, headers=inspector.headers)
    assert preview.status_code == post.status_code == 422
    assert preview.get_json()["errors"] == post.get_json()["errors"]
    assert field in preview.get_json()["errors"]


def test_a_person_not_registered_on_the_day_is_refused_as_a_post_would(client, admin, inspector):
    person = admin.practitioner()
    hospital = admin.institution()
    response = client.post("/v1/violations/preview", json=_body(person, hospital), headers=inspector.headers)
    assert response.status_code == 422
    assert "occurred_on" in response.get_json()["errors"]


@pytest.mark.parametrize("role", ["hr_system", "practitioner"])
def test_only_the_agency_previews(client, session, admin, role):
    person, hospital = admin.person()
    key = make_key(
        session,
        role,
        institution_code=hospital if role == "hr_system" else None,
        practitioner_code=person if role == "practitioner" else None,
    )
    response = client.post(
        "/v1/violations/preview", json=_body(person, hospital), headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 403
