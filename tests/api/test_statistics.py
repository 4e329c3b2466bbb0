"""The agency's statistics through the HTTP API (docs/api.md Statistics; docs/decisions.md).

One hand-built world, decided today (the real clock, Asia/Shanghai) so that everything falls in
today's score year, in two provinces that no other test has used in this database (so the
province figures are exactly the world's; the national figures are checked as the difference the
world makes, since committed tests elsewhere leave data of their own). Province P holds
institutions A and B, province Q institution C. Default profile (hebei-2025) in both.

| person | where | decision | then | tier |
|---|---|---|---|---|
| p1 | A | B1-01 main, 3 | repair submitted | institution_talk |
| p2 | A (and registered at C) | B2-01 general, 4 | repair approved (1 point) | agency_talk |
| p3 | A | B3-01 general, 7 | notice published; repair approved by the institution | public_notice |
| p4 | A | B3-01 main, 9 | appeal open; suspended 4 months from today | suspension |
| p9 | A | B1-02 important, 2 | appeal upheld | none |
| p10 | A | B3-01 general, 7 | notice published, then revoked: withdrawn | none |
| p5 | B | B4-01 main, 12 | terminated today | termination |
| p6 | B | B2-01 general, 4 | amended to 5; repair rejected by the institution | agency_talk |
| p7 | B | B1-01 main, 3 | revoked: its talk cancelled | none |
| p8 | C | B2-01 main, 6 | | agency_talk |
"""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from factories import Api, make_key
from factories import assert_problem as _problem
from sqlalchemy import func, select

from points_service.clock import local_today
from points_service.persistence.models import Institution, PractitionerState
from points_service.rules.calendar import add_months, add_years
from points_service.rules.identifiers import PROVINCES
from points_service.services.access import Principal
from points_service.services.statistics import Scope, statistics

ZERO_TIERS = dict.fromkeys(
    ("institution_talk", "agency_talk", "public_notice", "suspension", "termination"), 0
)
ZERO_STATES = dict.fromkeys(("pending", "completed", "published", "cancelled", "withdrawn"), 0)


def _today() -> str:
    return local_today().isoformat()


def _year() -> int:
    return local_today().year


def _measures(**kinds) -> dict:
    return {
        kind: {**ZERO_STATES, **kinds.get(kind, {})}
        for kind in ("institution_talk", "agency_talk", "public_notice")
    }


def _expected(
    *,
    decisions,
    points,
    tiers,
    measures,
    suspended,
    terminated,
    bands,
    repairs=None,
    appeals=None,
    province=None,
    institution_code=None,
) -> dict:
    return {
        "year": _year(),
        "province": province,
        "institution_code": institution_code,
        "today": _today(),
        "decisions": decisions,
        "points": points,
        "people_by_tier": {**ZERO_TIERS, **tiers},
        "measures": measures,
        "suspended_today": suspended,
        "terminated_today": terminated,
        "decisions_by_band": {"1": 0, "2": 0, "3": 0, "4": 0, **bands},
        "repairs": {
            "submitted": 0,
            "institution_approved": 0,
            "approved": 0,
            "rejected": 0,
            "points_repaired": 0,
            **(repairs or {}),
        },
        "appeals": {"open": 0, "upheld": 0, "amended": 0, "revoked": 0, **(appeals or {})},
    }


def _unused_provinces(session, n: int) -> list[str]:
    used = set(session.scalars(select(func.substr(Institution.region_code, 1, 2)).distinct()))
    return [p for p in sorted(PROVINCES) if p not in used][:n]


def _stats(api: Api, **query) -> dict:
    return api.get("/v1/statistics", query={"year": _year(), **query})


def _subtract(after, before):
    if isinstance(after, dict):
        return {k: _subtract(after[k], before[k]) for k in after}
    if isinstance(after, int) and not isinstance(after, bool):
        return after - before
    return after


@pytest.fixture
def world(client, session, admin, inspector, reviewer):
    national_before = _stats(admin)
    p_province, q_province = _unused_provinces(session, 2)
    a = admin.institution(region_code=f"{p_province}0100")
    b = admin.institution(region_code=f"{p_province}0200")
    c = admin.institution(region_code=f"{q_province}0100")
    hr = {code: Api(client, make_key(session, "hr_system", institution_code=code)) for code in (a, b, c)}
    people, decided = {}, {}

    def scored(name, institution, behaviour, responsibility):
        person = admin.practitioner()
        admin.register(person, institution, "2025-01-01")
        people[name] = person
        decided[name] = inspector.violation(
            person, institution, behaviour_code=behaviour, responsibility=responsibility, decided_on=_today()
        )
        return decided[name]

    scored("p1", a, "B1-01", "main")
    scored("p2", a, "B2-01", "general")
    admin.register(people["p2"], c, "2025-01-01")
    scored("p3", a, "B3-01", "general")
    scored("p4", a, "B3-01", "main")
    scored("p9", a, "B1-02", "important")
    scored("p10", a, "B3-01", "general")
    scored("p5", b, "B4-01", "main")
    scored("p6", b, "B2-01", "general")
    scored("p7", b, "B1-01", "main")
    scored("p8", c, "B2-01", "main")
    assert [decided[p]["points"] for p in ("p1", "p2", "p3", "p4", "p9", "p10", "p5", "p6", "p7", "p8")] == [
        3, 4, 7, 9, 2, 7, 12, 4, 3, 6,
    ]  # fmt: skip

    for name in ("p3", "p10"):
        [notice] = [t for t in decided[name]["triggered"] if t["type"] == "measure"]
        reviewer.post(f"/v1/measures/{notice['id']}/publish", {"published_on": _today()}, status=200)

    def appeal(name, outcome=None, points=None):
        filed = admin.post(f"/v1/violations/{decided[name]['id']}/appeals", {"reason": "not me"})
        if outcome:
            body = {"outcome": outcome, "reason": "reviewed", **({"points": points} if points else {})}
            reviewer.post(f"/v1/appeals/{filed['id']}/decision", body, status=200)

    appeal("p4")
    appeal("p9", "upheld")
    appeal("p6", "amended", 5)
    appeal("p7", "revoked")
    appeal("p10", "revoked")

    def repair(name, institution, activity, *steps):
        application = admin.post(
            "/v1/repairs",
            {
                "practitioner_code": people[name],
                "institution_code": institution,
                "activity": activity,
                "completed_on": _today(),
                "evidence_ref": f"certificate {name}",
            },
        )
        for reviewer_api, stage, decision in steps:
            application = reviewer_api.post(
                f"/v1/repairs/{application['id']}/{stage}-review",
                {"decision": decision, "comment": "checked", "version": application["version"]},
                status=200,
            )
        return application

    repair("p1", a, "offline_training")
    assert (
        repair("p2", a, "online_study", (hr[a], "institution", "approve"), (reviewer, "agency", "approve"))[
            "credit"
        ]["points"]
        == 1
    )
    repair("p3", a, "online_study", (hr[a], "institution", "approve"))
    repair("p6", b, "online_study", (hr[b], "institution", "reject"))
    return {
        "P": p_province,
        "Q": q_province,
        "A": a,
        "B": b,
        "C": c,
        "hr": hr,
        "people": people,
        "national_before": national_before,
    }


# -- each figure against the world -----------------------------------------------------------------


def test_a_province_counts_the_cases_that_arose_there_and_the_people_registered_there(admin, world):
    assert _stats(admin, province=world["P"]) == _expected(
        province=world["P"],
        decisions=7,  # p1 p2 p3 p4 p9 p5 p6; the revoked p7 and p10 are not in force
        points=42,  # 3 + 4 + 7 + 9 + 2 + 12 + 5 (p6 as amended)
        tiers={
            "institution_talk": 1,
            "agency_talk": 2,
            "public_notice": 1,
            "suspension": 1,
            "termination": 1,
        },
        measures=_measures(
            institution_talk={"pending": 1, "cancelled": 1},
            agency_talk={"pending": 2},
            public_notice={"published": 1, "withdrawn": 1},
        ),
        suspended=1,
        terminated=1,
        bands={"1": 2, "2": 2, "3": 2, "4": 1},
        repairs={
            "submitted": 1,
            "institution_approved": 1,
            "approved": 1,
            "rejected": 1,
            "points_repaired": 1,
        },
        appeals={"open": 1, "upheld": 1, "amended": 1, "revoked": 2},
    )


def test_a_person_counts_in_every_province_where_they_were_registered_that_year(admin, world):
    # p2's decision arose at A (province P), but p2 is registered at C too: C's province counts p2
    # among its people, not among its decisions
    assert _stats(admin, province=world["Q"]) == _expected(
        province=world["Q"],
        decisions=1,
        points=6,
        tiers={"agency_talk": 2},
        measures=_measures(agency_talk={"pending": 1}),
        suspended=0,
        terminated=0,
        bands={"2": 1},
    )


def test_an_institution_counts_its_own_cases_and_staff(admin, world):
    assert _stats(admin, institution_code=world["A"]) == _expected(
        institution_code=world["A"],
        decisions=5,
        points=25,
        tiers={"institution_talk": 1, "agency_talk": 1, "public_notice": 1, "suspension": 1},
        measures=_measures(
            institution_talk={"pending": 1},
            agency_talk={"pending": 1},
            public_notice={"published": 1, "withdrawn": 1},
        ),
        suspended=1,
        terminated=0,
        bands={"1": 2, "2": 1, "3": 2},
        repairs={"submitted": 1, "institution_approved": 1, "approved": 1, "points_repaired": 1},
        appeals={"open": 1, "upheld": 1, "revoked": 1},
    )
    assert _stats(admin, institution_code=world["B"]) == _expected(
        institution_code=world["B"],
        decisions=2,
        points=17,
        tiers={"agency_talk": 1, "termination": 1},
        measures=_measures(institution_talk={"cancelled": 1}, agency_talk={"pending": 1}),
        suspended=0,
        terminated=1,
        bands={"2": 1, "4": 1},
        repairs={"rejected": 1},
        appeals={"amended": 1, "revoked": 1},
    )


def test_the_national_figures_grow_by_exactly_the_world(admin, world):
    change = _subtract(_stats(admin), world["national_before"])
    assert change == _expected(
        decisions=8,
        points=48,
        # p2 is counted once, although registered in both provinces
        tiers={
            "institution_talk": 1,
            "agency_talk": 3,
            "public_notice": 1,
            "suspension": 1,
            "termination": 1,
        },
        measures=_measures(
            institution_talk={"pending": 1, "cancelled": 1},
            agency_talk={"pending": 3},
            public_notice={"published": 1, "withdrawn": 1},
        ),
        suspended=1,
        terminated=1,
        bands={"1": 2, "2": 3, "3": 2, "4": 1},
        repairs={
            "submitted": 1,
            "institution_approved": 1,
            "approved": 1,
            "rejected": 1,
            "points_repaired": 1,
        },
        appeals={"open": 1, "upheld": 1, "amended": 1, "revoked": 2},
    ) | {"year": 0}


def test_each_person_counts_once_at_the_tier_of_their_standing(client, session, admin, inspector, reviewer):
    """Talk and notice tiers come from the live tasks, sanction tiers from the snapshot of the people
    whose points could reach one: these people cross that line, or nearly."""
    [province] = _unused_provinces(session, 1)
    hospital = admin.institution(region_code=f"{province}0100")
    hr = Api(client, make_key(session, "hr_system", institution_code=hospital))
    people = {}

    def decide(name, behaviour, responsibility):
        if name not in people:
            people[name] = admin.practitioner()
            admin.register(people[name], hospital, "2025-01-01")
        return inspector.violation(
            people[name],
            hospital,
            behaviour_code=behaviour,
            responsibility=responsibility,
            decided_on=_today(),
        )

    # 7 (a notice), 2 repaired, then 3 more: 10 recorded, never more than 8 at once: still a notice
    decide("repaired", "B3-01", "general")
    application = admin.post(
        "/v1/repairs",
        {
            "practitioner_code": people["repaired"],
            "institution_code": hospital,
            "activity": "offline_training",
            "completed_on": _today(),
            "evidence_ref": "certificate",
        },
    )
    for api, stage in ((hr, "institution"), (reviewer, "agency")):
        application = api.post(
            f"/v1/repairs/{application['id']}/{stage}-review",
            {"decision": "approve", "comment": "ok", "version": application["version"]},
            status=200,
        )
    decide("repaired", "B1-01", "main")
    # a talk, then 12 in the year: terminated, and counted once, not also as a talk
    decide("terminated", "B1-01", "main")
    decide("terminated", "B3-01", "main")
    # an agency talk, then 9 in the year: suspended
    decide("suspended", "B2-01", "general")
    decide("suspended", "B2-01", "important")
    # 9 points, revoked: nothing
    revoked = decide("revoked", "B3-01", "main")
    appeal = admin.post(f"/v1/violations/{revoked['id']}/appeals", {"reason": "not me"})
    reviewer.post(f"/v1/appeals/{appeal['id']}/decision", {"outcome": "revoked", "reason": "so"}, status=200)

    standing = {
        name: admin.get(f"/v1/practitioners/{code}/standing", query={"year": _year()})["tier"]
        for name, code in people.items()
    }
    assert standing == {
        "repaired": "public_notice",
        "terminated": "termination",
        "suspended": "suspension",
        "revoked": "none",
    }
    assert _stats(admin, province=province)["people_by_tier"] == {
        **ZERO_TIERS,
        "public_notice": 1,
        "suspension": 1,
        "termination": 1,
    }


def test_another_year_has_none_of_it(admin, world):
    # the world is all in this year
    last_year = admin.get("/v1/statistics", query={"year": _year() - 1, "province": world["P"]})
    assert last_year["decisions"] == 0 and last_year["people_by_tier"] == ZERO_TIERS
    assert last_year["appeals"] == {"open": 0, "upheld": 0, "amended": 0, "revoked": 0}
    # today's figures are about today whatever the year asked: p4 and p5 are registered at P in
    # both years (since 2025-01-01)
    assert (last_year["suspended_today"], last_year["terminated_today"]) == (1, 1)


def test_the_year_defaults_to_this_year(admin, world):
    assert admin.get("/v1/statistics", query={"province": world["P"]}) == _stats(admin, province=world["P"])


def test_suspended_and_terminated_today_follow_the_rules_where_the_announced_status_may_be_stale(
    session, settings, admin, inspector
):
    """The feed's last word (`announced_status`) is today's status until `next_transition_on`; from
    that day on, until the transitions sweep runs, only the rules know: they are asked."""
    [province] = _unused_provinces(session, 1)
    hospital = admin.institution(region_code=f"{province}0100")
    suspended, terminated = admin.practitioner(), admin.practitioner()
    for person, behaviour in ((suspended, "B3-01"), (terminated, "B4-01")):
        admin.register(person, hospital, "2025-01-01")
        inspector.violation(
            person, hospital, behaviour_code=behaviour, responsibility="main", decided_on=_today()
        )
    today = local_today()
    suspension_ends, bar_ends = add_months(today, 4), add_years(today, 3)  # rule 11: 9 points, 12 points
    agency = Principal(key_id=0, name="test", role="admin")

    def sanctioned(day) -> tuple[int, int]:
        figures = statistics(
            session, agency, Scope(year=_year(), province=province), policies=settings.policies, today=day
        )
        return figures["suspended_today"], figures["terminated_today"]

    announced = dict(
        session.execute(
            select(PractitionerState.practitioner_code, PractitionerState.announced_status).where(
                PractitionerState.practitioner_code.in_([suspended, terminated])
            )
        ).all()
    )
    assert announced == {suspended: "suspended", terminated: "terminated"}
    assert sanctioned(today) == (1, 1)
    assert sanctioned(suspension_ends - dt.timedelta(days=1)) == (1, 1)
    # the suspension has ended, though nothing has announced it yet
    assert sanctioned(suspension_ends) == (0, 1)
    # a bar's end does not end a termination: a new registration does (rule 17)
    assert sanctioned(bar_ends + dt.timedelta(days=1)) == (0, 1)


# -- who may ask about what -------------------------------------------------------------------------


def test_an_hr_system_gets_its_own_institution_without_naming_it(admin, world):
    own = world["hr"][world["A"]]
    expected = _stats(admin, institution_code=world["A"])
    assert _stats(own) == expected
    assert _stats(own, institution_code=world["A"]) == expected


def test_an_hr_system_asking_about_another_institution_or_a_province_gets_404(client, world):
    own = world["hr"][world["A"]]
    for query in ({"institution_code": world["B"]}, {"province": world["P"]}, {"institution_code": "NOPE"}):
        response = client.get("/v1/statistics", query_string=query, headers=own.headers)
        _problem(response, 404, "not-found")
    # the other institution's key, about A
    response = client.get(
        "/v1/statistics",
        query_string={"institution_code": world["A"]},
        headers=world["hr"][world["C"]].headers,
    )
    _problem(response, 404, "not-found")


@pytest.mark.parametrize("role", ["inspector", "practitioner"])
def test_inspectors_and_practitioners_may_not_read_statistics(client, session, world, role):
    key = make_key(session, role, practitioner_code=world["people"]["p1"] if role == "practitioner" else None)
    response = client.get("/v1/statistics", headers={"Authorization": f"Bearer {key}"})
    _problem(response, 403, "forbidden")


def test_reviewers_read_the_same_figures_as_admins(admin, reviewer, world):
    assert _stats(reviewer, province=world["P"]) == _stats(admin, province=world["P"])


def test_statistics_need_a_key(client):
    _problem(client.get("/v1/statistics"), 401, "not-authenticated")


def test_unknown_institutions_bad_provinces_and_mismatches_are_refused(client, admin, world):
    _problem(
        client.get("/v1/statistics", query_string={"institution_code": "NO-SUCH"}, headers=admin.headers),
        404,
        "not-found",
    )
    for query, field in (
        ({"province": "99"}, "province"),
        ({"province": "1"}, "province"),
        ({"year": "1999"}, "year"),
        ({"format": "xml"}, "format"),
        ({"provinse": "13"}, "provinse"),
        ({"province": world["Q"], "institution_code": world["A"]}, "institution_code"),
    ):
        body = _problem(client.get("/v1/statistics", query_string=query, headers=admin.headers), 422)
        assert field in body["errors"], body


# -- the CSV form -----------------------------------------------------------------------------------


def _csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv" and response.mimetype_params["charset"] == "utf-8"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_the_csv_form_has_one_row_per_figure_of_the_json_answer(client, admin, world):
    figures = _stats(admin, institution_code=world["A"])
    response = client.get(
        "/v1/statistics",
        query_string={"year": _year(), "institution_code": world["A"], "format": "csv"},
        headers=admin.headers,
    )
    rows = _csv_rows(response)
    assert rows[0] == ["section", "key", "value"]
    assert rows[1:5] == [
        ["scope", "year", str(_year())],
        ["scope", "province", ""],
        ["scope", "institution_code", world["A"]],
        ["scope", "today", _today()],
    ]
    table = {(section, key): value for section, key, value in rows[5:]}
    assert len(table) == len(rows) - 5  # no figure twice
    expected = {("decisions", "total"): "5", ("points", "total"): "25", ("suspended_today", "total"): "1"}
    expected |= {("terminated_today", "total"): "0", ("repairs", "points_repaired"): "1"}
    expected |= {("people_by_tier", tier): str(n) for tier, n in figures["people_by_tier"].items()}
    expected |= {("decisions_by_band", band): str(n) for band, n in figures["decisions_by_band"].items()}
    expected |= {
        ("measures", f"{kind}.{state}"): str(n)
        for kind, states in figures["measures"].items()
        for state, n in states.items()
    }
    expected |= {("repairs", status): str(n) for status, n in figures["repairs"].items()}
    expected |= {("appeals", status): str(n) for status, n in figures["appeals"].items()}
    assert table == expected
    assert table[("measures", "public_notice.withdrawn")] == "1"
    assert (
        response.headers["Content-Disposition"]
        == f'attachment; filename="statistics-{_year()}-{world["A"]}.csv"'
    )
    assert response.headers["Vary"] == "Accept"


def test_accept_text_csv_gives_the_csv_form_and_format_json_overrides_it(client, admin, world):
    query = {"year": _year(), "province": world["P"]}
    by_accept = client.get(
        "/v1/statistics", query_string=query, headers={**admin.headers, "Accept": "text/csv"}
    )
    by_format = client.get("/v1/statistics", query_string={**query, "format": "csv"}, headers=admin.headers)
    assert _csv_rows(by_accept) == _csv_rows(by_format)
    forced = client.get(
        "/v1/statistics",
        query_string={**query, "format": "json"},
        headers={**admin.headers, "Accept": "text/csv"},
    )
    assert forced.mimetype == "application/json" and forced.get_json()["decisions"] == 7
    plain = client.get("/v1/statistics", query_string=query, headers={**admin.headers, "Accept": "*/*"})
    assert plain.mimetype == "application/json"
