"""The agency's desk in the console: the statistics page shows the figures GET /v1/statistics answers
for the same year and filters, with a chart drawn as inline SVG, to the roles the API lets read them;
the public notice register is readable by every role."""

from __future__ import annotations

import re

import pytest
from conftest import Console, text, words
from factories import Api, auth, make_key
from sqlalchemy import func, select

from points_service.api.agency import statistics_rows
from points_service.clock import local_today
from points_service.persistence.models import Institution
from points_service.rules.identifiers import PROVINCES

FIGURE = re.compile(r'data-figure="([a-z_.0-9]+)">(\d+)<')


def _figures(response) -> dict[str, int]:
    found = FIGURE.findall(text(response))
    figures = {key: int(value) for key, value in found}
    assert len(figures) == len(found), "a figure is shown twice"
    return figures


def _api_figures(answer: dict) -> dict[str, int]:
    """The API's answer as the CSV names its rows: `section.key`, `total` for a plain number."""
    rows = statistics_rows(answer)
    return {f"{section}.{key}": value for section, key, value in rows if section != "scope"}


@pytest.fixture
def province(session) -> str:
    """A province no other test has used in this database: its figures are this test's own."""
    used = set(session.scalars(select(func.substr(Institution.region_code, 1, 2)).distinct()))
    return next(p for p in sorted(PROVINCES) if p not in used)


@pytest.fixture
def world(admin, inspector, session, province) -> dict:
    """Three people at a hospital of the province: 3 points (a talk), 9 (suspended), 7 (a notice,
    published by the reviewer)."""
    hospital = admin.institution(region_code=f"{province}0100")
    today = local_today().isoformat()
    reviewer_key = make_key(session, "reviewer")
    reviewer = Api(inspector.client, reviewer_key)
    for behaviour, responsibility in (("B1-01", "main"), ("B3-01", "main"), ("B3-01", "general")):
        person = admin.practitioner()
        admin.register(person, hospital, "2025-01-01")
        decided = inspector.violation(
            person, hospital, behaviour_code=behaviour, responsibility=responsibility, decided_on=today
        )
    [notice] = [t for t in decided["triggered"] if t["type"] == "measure"]
    reviewer.post(
        f"/v1/measures/{notice['id']}/publish", {"published_on": today, "published_name": "王某"}, status=200
    )
    return {"hospital": hospital, "reviewer": reviewer, "reviewer_key": reviewer_key}


def _signed_in(app, key: str) -> Console:
    console = Console(app.test_client())
    console.sign_in(key)
    return console


def test_the_statistics_page_shows_the_apis_figures_for_the_year_and_a_chart(app, world, province, session):
    reviewer = world["reviewer"]
    console = _signed_in(app, world["reviewer_key"])
    year = local_today().year
    page = console.get("/console/statistics", query_string={"year": year, "province": province})
    assert page.status_code == 200
    answer = reviewer.get("/v1/statistics", query={"year": year, "province": province})
    shown = _figures(page)
    assert shown == _api_figures(answer)
    assert (shown["decisions.total"], shown["points.total"]) == (3, 19)
    assert shown["people_by_tier.suspension"] == 1 and shown["measures.public_notice.published"] == 1
    # the chart: one bar per tier, drawn in the page as SVG (nothing loaded, no script)
    svg = text(page).split("<svg", 1)[1].split("</svg>", 1)[0]
    assert 'role="img"' in svg and f"{year} 年按最高档次的人数" in svg
    assert svg.count("<rect") == 5 and "暂停医保支付资格" in svg and "1 人" in svg
    assert f"{year} 年 · 省级区划代码 {province}" in words(page)
    # without a year: this year, nationally, as the API answers without one
    national = _figures(console.get("/console/statistics"))
    assert national == _api_figures(reviewer.get("/v1/statistics"))


def test_a_hospital_sees_its_own_institutions_figures_as_its_key_gets_them_at_the_api(
    app, client, world, session
):
    hr_key = make_key(session, "hr_system", institution_code=world["hospital"])
    console = _signed_in(app, hr_key)
    page = console.get("/console/statistics")
    assert page.status_code == 200 and "机构只能查看本机构的统计" in text(page)
    assert 'name="province"' not in text(page)
    own = Api(client, hr_key).get("/v1/statistics")
    assert _figures(page) == _api_figures(own) and own["decisions"] == 3
    # naming a province, or another institution, is asking about what it may not see: 404, as at the API
    for query in ({"province": "13"}, {"institution_code": "H-ELSEWHERE"}):
        assert Api(client, hr_key).get("/v1/statistics", query=query, status=404)
        assert console.get("/console/statistics", query_string=query).status_code == 404


def test_the_statistics_page_is_refused_to_the_roles_the_api_refuses(app, client, case, session):
    for role, key in (
        ("inspector", make_key(session, "inspector")),
        ("practitioner", case.practitioner_key),
    ):
        assert client.get("/v1/statistics", headers=auth(key)).status_code == 403, role
        refused = _signed_in(app, key).get("/console/statistics")
        assert refused.status_code == 403 and "您的角色无权访问此页面" in text(refused), role


def test_bad_statistics_filters_are_refused_at_their_field(app, session):
    console = _signed_in(app, make_key(session, "reviewer"))
    for query, message in (
        ({"year": "1999"}, "年度须在 2000 至 2200 之间"),
        ({"province": "1"}, "两位数字"),
        ({"institution_code": "a b"}, "编码只能由字母"),
    ):
        refused = console.get("/console/statistics", query_string=query)
        assert refused.status_code == 422 and message in text(refused), query
    missing = console.get("/console/statistics", query_string={"institution_code": "NO-SUCH-HOSPITAL"})
    assert missing.status_code == 404


def test_every_role_reads_the_public_notice_register(app, world, case, session):
    keys = [
        case.practitioner_key,
        case.hr_key,
        make_key(session, "inspector"),
        make_key(session, "reviewer"),
        make_key(session, "admin"),
    ]
    for key in keys:
        page = _signed_in(app, key).get("/console/notices", query_string={"year": local_today().year})
        assert page.status_code == 200
        said = words(page)
        assert "王某" in said and world["hospital"] in said and "以未登记备案" in said and "7 分" in said
        assert f"{local_today().isoformat()}" in said


def test_the_register_refuses_a_page_position_it_did_not_issue(app, session):
    console = _signed_in(app, make_key(session, "reviewer"))
    for after in ("x.1", "0.1", "9999999.1"):
        assert console.get("/console/notices", query_string={"after": after}).status_code == 422, after
