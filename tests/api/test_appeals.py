"""Appeals through the HTTP API (docs/rules.md §5 rules 23–24; docs/api.md Violations).

The appeal window is 15 Chinese working days after `decided_on`, on the real clock (Asia/Shanghai):
a decision of today is always inside its own window; one of 2025-03-03 no longer is. Deadlines and
terms are computed from today by the rules, so the suite passes on any date.
"""

from __future__ import annotations

import datetime as dt

import pytest
from factories import Api, make_key
from factories import assert_problem as _problem

from points_service.clock import local_today
from points_service.rules.appeals import appeal_window
from points_service.rules.calendar import add_months, add_years
from points_service.settings import load_workday_calendar

WORKING_DAYS = 15  # the appeal window (docs/rules.md rule 23)
LONG_AGO = dt.date(2025, 3, 3)  # a decision whose window closed long before any run of the suite


def _decided() -> dt.date:
    """Decisions under appeal are decided today: the appeal is always inside the window."""
    return local_today()


def _inside_old_term() -> str:
    """A day inside the 4-month suspension of a 9-point decision of today: its first day."""
    return _decided().isoformat()


def _self(client, session, person: str) -> Api:
    return Api(client, make_key(session, "practitioner", practitioner_code=person))


def _standing(api: Api, person: str) -> dict:
    return api.get(f"/v1/practitioners/{person}/standing", query={"year": local_today().year})


def _eligibility(api: Api, person: str, at: str) -> dict:
    return api.get(f"/v1/practitioners/{person}/eligibility", query={"at": at})


def _scored(client, session, admin, inspector, *, behaviour_code="B3-01", responsibility="main", **kw):
    """A person with one decision: (person, hospital, violation, the person's own client)."""
    person, hospital = admin.person()
    violation = inspector.violation(
        person,
        hospital,
        behaviour_code=behaviour_code,
        responsibility=responsibility,
        decided_on=kw.pop("decided_on", _decided().isoformat()),
        **kw,
    )
    return person, hospital, violation, _self(client, session, person)


def _appeal(api: Api, violation: dict) -> dict:
    return api.post(f"/v1/violations/{violation['id']}/appeals", {"reason": "I was on leave that week"})


def _decide(api: Api, appeal: dict, outcome: str, *, status=200, **extra) -> dict:
    return api.post(
        f"/v1/appeals/{appeal['id']}/decision",
        {"outcome": outcome, "reason": "reviewed the file", **extra},
        status=status,
    )


# -- filing (rule 23) -----------------------------------------------------------------------------


def test_the_person_appeals_within_the_window(client, session, admin, inspector):
    person, _, violation, own = _scored(client, session, admin, inspector)
    response = client.post(
        f"/v1/violations/{violation['id']}/appeals", json={"reason": "not my shift"}, headers=own.headers
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    appeal = response.get_json()
    assert response.headers["Location"] == f"/v1/appeals/{appeal['id']}"
    assert response.headers["ETag"] == f'"{appeal["version"]}"'
    window = appeal_window(_decided(), WORKING_DAYS, load_workday_calendar())
    assert {k: appeal[k] for k in ("status", "deadline", "deadline_estimated", "violation_id")} == {
        "status": "open",
        "deadline": window.deadline.isoformat(),
        "deadline_estimated": window.estimated,
        "violation_id": violation["id"],
    }
    assert appeal["practitioner_code"] == person
    assert appeal["filed_on"] == local_today().isoformat()
    assert (appeal["decided_on"], appeal["outcome_points"]) == (None, None)


def test_an_admin_may_file_an_appeal_for_the_person(client, session, admin, inspector):
    _, _, violation, _ = _scored(client, session, admin, inspector)
    assert _appeal(admin, violation)["status"] == "open"


def test_appealing_the_same_decision_twice_is_a_409(client, session, admin, inspector):
    _, _, violation, own = _scored(client, session, admin, inspector)
    _appeal(own, violation)
    response = client.post(
        f"/v1/violations/{violation['id']}/appeals", json={"reason": "again"}, headers=own.headers
    )
    _problem(response, 409)


def test_an_appeal_after_the_window_is_a_422_citing_rule_23(client, session, admin, inspector):
    _, _, violation, own = _scored(client, session, admin, inspector, decided_on=LONG_AGO.isoformat())
    closed = appeal_window(LONG_AGO, WORKING_DAYS, load_workday_calendar()).deadline
    assert closed < local_today()
    response = client.post(
        f"/v1/violations/{violation['id']}/appeals", json={"reason": "late"}, headers=own.headers
    )
    body = _problem(response, 422, "rule-violation")
    assert body["rule"] == "docs/rules.md rule 23"
    assert closed.isoformat() in body["detail"]
    assert admin.get(f"/v1/violations/{violation['id']}")["state"] == "effective"


def test_another_person_appealing_sees_no_such_decision(client, session, admin, inspector):
    _, _, violation, _ = _scored(client, session, admin, inspector)
    stranger, _ = admin.person()
    response = client.post(
        f"/v1/violations/{violation['id']}/appeals",
        json={"reason": "not mine"},
        headers=_self(client, session, stranger).headers,
    )
    _problem(response, 404, "not-found")


def test_an_hr_system_may_not_appeal(client, session, admin, inspector):
    _, hospital, violation, _ = _scored(client, session, admin, inspector)
    hr = Api(client, make_key(session, "hr_system", institution_code=hospital))
    response = client.post(
        f"/v1/violations/{violation['id']}/appeals", json={"reason": "on their behalf"}, headers=hr.headers
    )
    _problem(response, 403, "forbidden")


# -- decisions (rules 23, 24) -----------------------------------------------------------------------


def test_an_upheld_appeal_changes_nothing(client, session, admin, inspector, reviewer):
    person, _, violation, own = _scored(client, session, admin, inspector)
    before = _standing(admin, person)
    appeal = _appeal(own, violation)
    decided = _decide(reviewer, appeal, "upheld")
    assert (decided["status"], decided["decided_on"], decided["outcome_points"]) == (
        "upheld",
        local_today().isoformat(),
        None,
    )
    assert decided["version"] == appeal["version"] + 1
    assert _standing(admin, person) == before
    assert (admin.get(f"/v1/violations/{violation['id']}")["state"], before["points_total"]) == (
        "effective",
        9,
    )
    assert _eligibility(admin, person, _inside_old_term())["status"] == "suspended"


def test_an_amendment_recomputes_the_points_and_the_suspension(client, session, admin, inspector, reviewer):
    person, _, violation, own = _scored(client, session, admin, inspector)
    before = _standing(admin, person)
    assert (before["points_total"], before["tier"]) == (9, "suspension")
    decided_on = _decided()  # a single 9 suspends for 4 months from the decision date (rules 11, 15)
    assert [(s["kind"], s["start"], s["end"], s["months"]) for s in before["sanctions"]] == [
        ("suspension", decided_on.isoformat(), add_months(decided_on, 4).isoformat(), 4)
    ]

    decided = _decide(reviewer, _appeal(own, violation), "amended", points=6)
    assert (decided["status"], decided["outcome_points"]) == ("amended", 6)

    read = admin.get(f"/v1/violations/{violation['id']}")
    assert (read["state"], read["current_points"]) == ("amended", 6)
    after = _standing(admin, person)
    assert (after["points_recorded"], after["points_total"], after["max_single_event"]) == (6, 6, 6)
    assert after["tier"] == "agency_talk"
    assert after["sanctions"] == []  # 6 points suspend nobody (rules 10, 11)
    assert [(m["kind"], m["violation_id"], m["state"]) for m in after["measures"]] == [
        ("agency_talk", violation["id"], "pending")
    ]
    eligibility = _eligibility(admin, person, _inside_old_term())
    assert (eligibility["eligible"], eligibility["status"]) == (True, "active")


def test_a_revocation_lifts_the_suspension_it_caused(client, session, admin, inspector, reviewer):
    person, _, violation, own = _scored(client, session, admin, inspector)
    assert _eligibility(admin, person, _inside_old_term())["status"] == "suspended"
    decided = _decide(reviewer, _appeal(own, violation), "revoked")
    assert decided["status"] == "revoked"

    read = admin.get(f"/v1/violations/{violation['id']}")
    assert (read["state"], read["current_points"]) == ("revoked", 0)
    standing = _standing(admin, person)
    assert (standing["points_total"], standing["tier"], standing["sanctions"]) == (0, "none", [])
    assert standing["status"] == "active"
    eligibility = _eligibility(admin, person, _inside_old_term())
    assert (eligibility["eligible"], eligibility["status"]) == (True, "active")


def test_a_revocation_cancels_the_measure_it_triggered_without_deleting_it(
    client, session, admin, inspector, reviewer
):
    person, hospital, violation, own = _scored(
        client, session, admin, inspector, behaviour_code="B1-01", responsibility="main"
    )
    [measure] = admin.get("/v1/measures", query={"institution_code": hospital})["items"]
    assert (measure["kind"], measure["state"], measure["violation_id"]) == (
        "institution_talk",
        "pending",
        violation["id"],
    )
    _decide(reviewer, _appeal(own, violation), "revoked")

    [cancelled] = admin.get("/v1/measures", query={"institution_code": hospital})["items"]
    assert (cancelled["id"], cancelled["kind"], cancelled["state"]) == (
        measure["id"],
        "institution_talk",
        "cancelled",
    )
    assert admin.get("/v1/measures", query={"institution_code": hospital, "state": "pending"})["items"] == []
    assert _standing(admin, person)["measures"] == []


def test_a_measure_whose_cause_comes_back_is_a_new_task_beside_the_cancelled_one(
    client, session, admin, inspector, reviewer
):
    """Rule 13 with rules 23-24: 1 + 1 + 2 points make the third decision an agency talk; revoking
    the first makes it an institution talk (the agency talk is cancelled); amending the second to
    2 points makes it an agency talk again, as a new pending task."""
    today = _decided()
    if today.timetuple().tm_yday < 3:
        pytest.skip("needs three days of this score year, so the decisions are ordered by date")
    person, hospital = admin.person()
    own = _self(client, session, person)
    # on three days, so the amended entry (which keeps its decision date) still comes second
    first, second, third = (
        inspector.violation(
            person,
            hospital,
            behaviour_code="B1-99",
            points=points,
            decided_on=(today - dt.timedelta(days=days_ago)).isoformat(),
        )
        for points, days_ago in ((1, 2), (1, 1), (2, 0))
    )

    def live() -> set[tuple[str, str]]:
        return {
            (m["kind"], m["state"])
            for m in admin.get("/v1/measures", query={"institution_code": hospital})["items"]
            if m["violation_id"] == third["id"]
        }

    assert live() == {("agency_talk", "pending")}
    _decide(reviewer, _appeal(own, first), "revoked")
    assert live() == {("agency_talk", "cancelled"), ("institution_talk", "pending")}
    _decide(reviewer, _appeal(own, second), "amended", points=2)
    measures = admin.get("/v1/measures", query={"institution_code": hospital})["items"]
    assert sorted((m["kind"], m["state"]) for m in measures if m["violation_id"] == third["id"]) == [
        ("agency_talk", "cancelled"),
        ("agency_talk", "pending"),
        ("institution_talk", "cancelled"),
    ]
    assert [m["kind"] for m in _standing(admin, person)["measures"]] == ["agency_talk"]


def test_revoking_a_termination_reopens_its_registrations_and_lifts_the_bar(
    client, session, admin, inspector, reviewer
):
    person, hospital, violation, own = _scored(
        client, session, admin, inspector, behaviour_code="B4-01", responsibility="main"
    )
    elsewhere = admin.institution()
    decided = _decided().isoformat()
    barred_until = add_years(_decided(), 3).isoformat()  # a single-event 12 bars for 3 years (rule 17)
    [termination] = _standing(admin, person)["sanctions"]
    assert (termination["kind"], termination["barred_until"]) == ("termination", barred_until)
    assert [
        (r["institution_code"], r["end_date"])
        for r in admin.get(f"/v1/practitioners/{person}")["registrations"]
    ] == [(hospital, decided)]
    barred = client.post(
        f"/v1/practitioners/{person}/registrations",
        json={"institution_code": elsewhere, "start_date": decided},  # inside the bar
        headers=admin.headers,
    )
    assert _problem(barred, 409, "reregistration-barred")["barred_until"] == barred_until

    _decide(reviewer, _appeal(own, violation), "revoked")

    assert [
        (r["institution_code"], r["end_date"])
        for r in admin.get(f"/v1/practitioners/{person}")["registrations"]
    ] == [(hospital, None)]
    today = local_today().isoformat()
    eligibility = admin.get(
        f"/v1/practitioners/{person}/eligibility", query={"at": today, "institution_code": hospital}
    )
    assert (eligibility["eligible"], eligibility["status"], eligibility["barred_until"]) == (
        True,
        "active",
        None,
    )
    standing = _standing(admin, person)
    assert (standing["status"], standing["sanctions"], standing["barred_until"]) == ("active", [], None)
    admin.register(person, elsewhere, decided)  # 201: no bar any more


def test_an_amendment_without_points_is_a_422(client, session, admin, inspector, reviewer):
    person, _, violation, own = _scored(client, session, admin, inspector)
    appeal = _appeal(own, violation)
    response = client.post(
        f"/v1/appeals/{appeal['id']}/decision",
        json={"outcome": "amended", "reason": "too harsh"},
        headers=reviewer.headers,
    )
    body = _problem(response, 422)
    assert list(body["errors"]) == ["points"]
    assert admin.get(f"/v1/appeals/{appeal['id']}")["status"] == "open"
    assert _standing(admin, person)["points_total"] == 9


@pytest.mark.parametrize("points", [3, 13])
def test_an_amendment_outside_the_allowed_range_is_a_422(client, session, admin, inspector, reviewer, points):
    # B3-01 allows 7–9, one band down when mitigated (4–6), one up when aggravated (10–12)
    person, _, violation, own = _scored(client, session, admin, inspector)
    appeal = _appeal(own, violation)
    response = client.post(
        f"/v1/appeals/{appeal['id']}/decision",
        json={"outcome": "amended", "points": points, "reason": "too harsh"},
        headers=reviewer.headers,
    )
    body = _problem(response, 422)
    assert list(body["errors"]) == ["points"]
    assert admin.get(f"/v1/appeals/{appeal['id']}")["status"] == "open"
    assert admin.get(f"/v1/violations/{violation['id']}")["state"] == "effective"
    assert _standing(admin, person)["points_total"] == 9


def test_an_appeal_is_decided_once(client, session, admin, inspector, reviewer):
    person, _, violation, own = _scored(client, session, admin, inspector)
    appeal = _appeal(own, violation)
    _decide(reviewer, appeal, "revoked")
    response = client.post(
        f"/v1/appeals/{appeal['id']}/decision",
        json={"outcome": "upheld", "reason": "second thoughts"},
        headers=reviewer.headers,
    )
    _problem(response, 409, "workflow-conflict")
    assert admin.get(f"/v1/appeals/{appeal['id']}")["status"] == "revoked"
    assert _standing(admin, person)["points_total"] == 0


@pytest.mark.parametrize("role", ["admin", "inspector", "hr_system", "practitioner"])
def test_only_a_reviewer_may_decide(client, session, admin, inspector, role):
    person, hospital, violation, own = _scored(client, session, admin, inspector)
    appeal = _appeal(own, violation)
    caller = {
        "admin": admin,
        "inspector": inspector,
        "hr_system": Api(client, make_key(session, "hr_system", institution_code=hospital)),
        "practitioner": own,
    }[role]
    response = client.post(
        f"/v1/appeals/{appeal['id']}/decision",
        json={"outcome": "revoked", "reason": "mine"},
        headers=caller.headers,
    )
    _problem(response, 403, "forbidden")
    assert admin.get(f"/v1/appeals/{appeal['id']}")["status"] == "open"


def test_a_decision_with_a_stale_version_is_a_409(client, session, admin, inspector, reviewer):
    person, _, violation, own = _scored(client, session, admin, inspector)
    appeal = _appeal(own, violation)
    response = client.post(
        f"/v1/appeals/{appeal['id']}/decision",
        json={"outcome": "revoked", "reason": "x", "version": appeal["version"] + 1},
        headers=reviewer.headers,
    )
    body = _problem(response, 409, "stale-version")
    assert body["version"] == appeal["version"]
    assert admin.get(f"/v1/appeals/{appeal['id']}")["status"] == "open"
    assert _standing(admin, person)["points_total"] == 9
    # the current version is accepted
    assert _decide(reviewer, appeal, "revoked", version=appeal["version"])["status"] == "revoked"


# -- reads ------------------------------------------------------------------------------------------


def test_an_appeal_is_visible_as_its_decision_is(client, session, admin, inspector, reviewer):
    _, hospital, violation, own = _scored(client, session, admin, inspector)
    appeal = _appeal(own, violation)
    path = f"/v1/appeals/{appeal['id']}"
    hospital_hr = Api(client, make_key(session, "hr_system", institution_code=hospital))
    for api in (own, admin, reviewer, inspector, hospital_hr):
        response = client.get(path, headers=api.headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json() == appeal
    stranger, _ = admin.person()
    for outsider in (
        Api(client, make_key(session, "hr_system", institution_code=admin.institution())),
        _self(client, session, stranger),
    ):
        _problem(client.get(path, headers=outsider.headers), 404, "not-found")
    _problem(client.get("/v1/appeals/987654321", headers=admin.headers), 404, "not-found")


def test_the_history_shows_the_reversal_after_a_revocation(client, session, admin, inspector, reviewer):
    person, _, violation, own = _scored(client, session, admin, inspector)
    appeal = _appeal(own, violation)
    _decide(reviewer, appeal, "revoked")
    items = admin.get(f"/v1/practitioners/{person}/history")["items"]
    [decision] = [i for i in items if i["kind"] == "decision"]
    [reversal] = [i for i in items if i["kind"] == "reversal"]
    assert (decision["violation_id"], decision["points"]) == (violation["id"], 9)
    assert (reversal["on"], reversal["points"], reversal["score_year"]) == (
        local_today().isoformat(),
        -9,
        _decided().year,
    )
    assert f"appeal {appeal['id']} revoked" in reversal["detail"]
    assert items.index(decision) < items.index(reversal)


def test_an_amended_decision_keeps_its_place_among_the_decisions_of_its_day(
    client, session, admin, inspector, reviewer
):
    # A (4 points) then B (3 points), both decided today; A amended to 5. A keeps its place: 5 ->
    # an agency talk for A, 8 -> a public notice for B (docs/rules.md rule 24)
    person, hospital = admin.person()
    today = _decided().isoformat()
    a = inspector.violation(person, hospital, behaviour_code="B2-01", decided_on=today)
    b = inspector.violation(person, hospital, behaviour_code="B1-99", responsibility="main", decided_on=today)
    before = _standing(admin, person)["measures"]
    appeal = _appeal(_self(client, session, person), a)
    _decide(reviewer, appeal, "amended", points=5)
    standing = _standing(admin, person)
    assert standing["points_total"] == 8
    assert [(m["kind"], m["violation_id"]) for m in standing["measures"]] == [
        ("agency_talk", a["id"]),
        ("public_notice", b["id"]),
    ]
    # the same tasks as before the amendment: none was cancelled and made again
    assert [m["id"] for m in standing["measures"]] == [m["id"] for m in before]
