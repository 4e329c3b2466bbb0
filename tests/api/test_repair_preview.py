"""The answer before applying (docs/api.md Repairs): POST /v1/repairs/preview says what an
application would bring if the agency approved it today — the credit, the months it takes off a
running suspension or bar, or why it cannot succeed — with the same checks as a submission, and
submits nothing. A later real approval gives exactly the previewed credit."""

from __future__ import annotations

import pytest
from factories import Api, approve_repair, make_key
from factories import assert_problem as _problem
from sqlalchemy import func, select

from points_service.clock import local_today
from points_service.persistence.models import AuditEvent, LedgerEntry, OutboxEvent, RepairApplication


def _application(person: str, institution: str, activity: str = "offline_training", **over) -> dict:
    return {
        "practitioner_code": person,
        "institution_code": institution,
        "activity": activity,
        "completed_on": local_today().isoformat(),
        **over,
    }


def _counts(session) -> tuple[int, ...]:
    tables = (RepairApplication, LedgerEntry, OutboxEvent, AuditEvent)
    return tuple(session.scalar(select(func.count()).select_from(t)) for t in tables)


@pytest.fixture
def suspended(client, session, admin, inspector):
    """A person suspended today by a single 9 (B3-01 main), with themselves, their HR and a reviewer."""
    person, hospital = admin.person()
    inspector.violation(
        person, hospital, behaviour_code="B3-01", responsibility="main", decided_on=local_today().isoformat()
    )
    return {
        "person": person,
        "hospital": hospital,
        "self": Api(client, make_key(session, "practitioner", practitioner_code=person)),
        "hr": Api(client, make_key(session, "hr_system", institution_code=hospital)),
        "reviewer": Api(client, make_key(session, "reviewer")),
    }


def test_a_preview_gives_the_credit_and_submits_nothing(session, suspended):
    before = _counts(session)
    preview = suspended["self"].post(
        "/v1/repairs/preview", _application(suspended["person"], suspended["hospital"]), status=200
    )
    assert preview == {
        "practitioner_code": suspended["person"],
        "institution_code": suspended["hospital"],
        "activity": "offline_training",
        "profile": preview["profile"],
        "score_year": local_today().year,
        "points_total": 9,
        "activity_value": 2,
        "allowed": True,
        "refusal": None,
        "credit": 2,
        "limited_by": None,
        "months_shortened": 0,
        "shortened": None,
    }
    assert _counts(session) == before


def test_the_preview_of_the_third_repaired_point_shows_the_month_off_the_suspension(suspended):
    hr, reviewer, person, hospital = (suspended[k] for k in ("hr", "reviewer", "person", "hospital"))
    approve_repair(
        hr, reviewer, hr.post("/v1/repairs", {**_application(person, hospital), "evidence_ref": "c-1"})
    )
    preview = hr.post("/v1/repairs/preview", _application(person, hospital, "online_study"), status=200)
    assert (preview["credit"], preview["months_shortened"], preview["shortened"]) == (1, 1, "suspension")

    approved = approve_repair(
        hr,
        reviewer,
        hr.post("/v1/repairs", {**_application(person, hospital, "online_study"), "evidence_ref": "c-2"}),
    )
    assert approved["credit"] == {"points": 1, "months_shortened": 1, "shortened": "suspension"}


def test_an_application_that_cannot_succeed_is_answered_with_its_rule_not_refused(
    client, session, admin, inspector
):
    person, hospital = admin.person()
    inspector.violation(
        person, hospital, behaviour_code="B4-01", responsibility="main", decided_on=local_today().isoformat()
    )
    preview = Api(client, make_key(session, "practitioner", practitioner_code=person)).post(
        "/v1/repairs/preview", _application(person, hospital), status=200
    )
    assert (preview["allowed"], preview["credit"], preview["months_shortened"]) == (False, 0, 0)
    assert preview["refusal"].startswith("docs/rules.md rule 21") and "single-event 12" in preview["refusal"]


def test_a_preview_refuses_what_a_submission_refuses_before_the_rules(client, session, admin, suspended):
    other, _ = admin.person()
    response = client.post(
        "/v1/repairs/preview",
        json=_application(other, suspended["hospital"]),
        headers=suspended["self"].headers,
    )
    assert _problem(response, 403)["detail"] == "a practitioner may only apply to repair their own points"
    future = _application(suspended["person"], suspended["hospital"], completed_on="2999-01-01")
    response = client.post("/v1/repairs/preview", json=future, headers=suspended["self"].headers)
    assert list(_problem(response, 422)["errors"]) == ["completed_on"]


@pytest.mark.parametrize("role", ["inspector", "reviewer"])
def test_only_those_who_may_apply_preview(client, session, suspended, role):
    response = client.post(
        "/v1/repairs/preview",
        json=_application(suspended["person"], suspended["hospital"]),
        headers={"Authorization": f"Bearer {make_key(session, role)}"},
    )
    _problem(response, 403, "forbidden")
