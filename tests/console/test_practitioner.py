"""The practitioner's pages: their standing and file, the repair application with the rules'
answer before it is submitted, and the appeal inside its window; another person's records are
not found, as at the API."""

from __future__ import annotations

import datetime as dt
import re

from conftest import text, words
from factories import Api, make_key
from sqlalchemy import func, select

from points_service.clock import local_today
from points_service.persistence.models import Appeal, RepairApplication
from points_service.rules.calendar import add_months, add_years


def _form(case, activity="offline_training", **over) -> dict:
    return {
        "institution_code": case.hospital,
        "activity": activity,
        "completed_on": local_today().isoformat(),
        "evidence_ref": "certificate 0042",
        **over,
    }


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def _approve(client, session, hospital: str, body: dict) -> dict:
    hr = Api(client, make_key(session, "hr_system", institution_code=hospital))
    reviewer = Api(client, make_key(session, "reviewer"))
    repair = hr.post("/v1/repairs", body)
    first = hr.post(
        f"/v1/repairs/{repair['id']}/institution-review",
        {"decision": "approve", "comment": "ok", "version": repair["version"]},
        status=200,
    )
    return reviewer.post(
        f"/v1/repairs/{repair['id']}/agency-review",
        {"decision": "approve", "comment": "ok", "version": first["version"]},
        status=200,
    )


def test_the_home_page_names_the_person_and_shows_points_tier_eligibility_measures_and_file(console, case):
    console.sign_in(case.practitioner_key)
    page = text(console.get("/console/me"))
    assert f"Person {case.person}" in page and "医师" in page
    assert f"{local_today().year} 年记分" in page
    assert re.search(r'class="number">4</span> 分', page)
    assert "经办机构谈话提醒" in page  # the tier of 4 points (rule 10) and its measure
    assert "正常" in page and "docs/rules.md rule 18" in page
    # the decision, in words, with its appeal window (15 working days, rule 23)
    assert "第三十八条、第三十九条" in page and "B2-01" in page
    assert "提出申诉" in page and "docs/rules.md rule 23" in page
    # the file: registration, decision and the measure it triggered, each with who did it
    assert "一人一档" in page
    for phrase in ("登记备案", "记分决定", "触发处理措施", "按规则自动生成", "医保经办机构"):
        assert phrase in page, phrase


def _suspended(admin, inspector) -> tuple[str, str]:
    """A person suspended today: one event of 9 points, 4 months (rule 11)."""
    person, hospital = admin.person()
    inspector.violation(
        person, hospital, behaviour_code="B3-01", responsibility="main", decided_on=local_today().isoformat()
    )
    return person, hospital


def test_a_suspension_shows_its_dates_and_the_day_eligibility_returns(console, admin, inspector, session):
    person, _ = _suspended(admin, inspector)
    today = local_today()
    end = add_months(today, 4)
    console.sign_in(make_key(session, "practitioner", practitioner_code=person))
    page = words(console.get("/console/me"))
    assert "暂停医保支付资格" in page and "4 个月" in page
    assert f"自 {end.isoformat()} 起恢复" in page
    assert f"{today.isoformat()} 至 {(end - dt.timedelta(days=1)).isoformat()}" in page
    assert "执行中" in page and "docs/rules.md rules 10, 11, 15" in page
    assert "急诊、抢救" in page  # rule 18: emergency care still settles


def test_a_termination_shows_the_bar_and_when_registering_is_possible_again(console, case, inspector):
    today = local_today()
    # 4 points and then 9 make 13 in the year: termination, re-registration barred a year (rules 10, 17)
    inspector.violation(
        case.person,
        case.hospital,
        behaviour_code="B3-01",
        responsibility="main",
        decided_on=today.isoformat(),
    )
    console.sign_in(case.practitioner_key)
    page = words(console.get("/console/me"))
    barred = add_years(today, 1)
    assert "终止医保支付资格" in page and "1 年内不得再次登记备案" in page
    assert f"{barred.isoformat()} 前不得再次登记备案" in page
    assert f"（{barred.isoformat()} 起可再次登记备案）" in page
    assert "docs/rules.md rule 17" in page


def test_the_check_step_shows_the_credit_before_anything_is_submitted(console, case, session):
    console.sign_in(case.practitioner_key)
    form = console.get("/console/me/repairs/new")
    assert form.status_code == 200 and "第一步：核对规则结果" in text(form)
    before = _count(session, RepairApplication)
    answer = console.post("/console/me/repairs/check", _form(case))
    assert answer.status_code == 200
    page = text(answer)
    assert "可以申请：预计减去 2 分" in page
    assert "累计变为 2 分" in page and "docs/rules.md rules 19–22" in page
    assert "第二步：提交申请" in page
    assert _count(session, RepairApplication) == before  # a check writes nothing


def test_the_check_step_says_why_an_application_cannot_succeed_with_the_rule(console, case, client, session):
    # 4 points this year: repairing 2 and then 2 leaves nothing (rule 21)
    _approve(client, session, case.hospital, {**_form(case), "practitioner_code": case.person})
    _approve(client, session, case.hospital, {**_form(case), "practitioner_code": case.person})
    console.sign_in(case.practitioner_key)
    page = text(console.post("/console/me/repairs/check", _form(case, "online_study")))
    assert "这项申请不能成功" in page
    assert f"{local_today().year} 年记录的分值已全部修复" in page
    assert "docs/rules.md rule 21" in page
    assert "第二步：提交申请" not in page
    # submitting anyway is refused by the service with the same rule, and writes nothing
    before = _count(session, RepairApplication)
    refused = console.post("/console/me/repairs", _form(case, "online_study"))
    assert refused.status_code == 422 and "docs/rules.md rule 21" in text(refused)
    assert _count(session, RepairApplication) == before


def test_the_check_step_shows_the_month_a_repair_takes_off_a_running_suspension(
    console, admin, inspector, client, session
):
    person, hospital = _suspended(admin, inspector)
    _approve(client, session, hospital, {**_form_for(person, hospital), "activity": "online_study"})
    console.sign_in(make_key(session, "practitioner", practitioner_code=person))
    page = text(console.post("/console/me/repairs/check", _form_for(person, hospital)))
    # 1 repaired, 2 more make 3: one month off the suspension in effect (rule 22)
    assert "预计减去 2 分" in page and "暂停期缩短 1 个月" in page


def test_the_check_step_reports_the_cap_that_limits_the_credit(console, admin, inspector, session, client):
    person, hospital = _suspended(admin, inspector)
    for _ in range(2):  # 2 + 2 + 1 = 5 repaired: the yearly cap of 6 leaves 1 (rule 20)
        _approve(client, session, hospital, {**_form_for(person, hospital), "activity": "offline_training"})
    _approve(client, session, hospital, {**_form_for(person, hospital), "activity": "online_study"})
    console.sign_in(make_key(session, "practitioner", practitioner_code=person))
    page = text(console.post("/console/me/repairs/check", {**_form_for(person, hospital)}))
    assert "预计减去 1 分" in page
    assert "每年最多修复 6 分" in page and "docs/rules.md rule 20" in page


def _form_for(person: str, hospital: str) -> dict:
    return {
        "practitioner_code": person,
        "institution_code": hospital,
        "activity": "offline_training",
        "completed_on": local_today().isoformat(),
        "evidence_ref": "certificate 0042",
    }


def test_submitting_files_the_application_for_the_hospitals_review(console, case, session):
    console.sign_in(case.practitioner_key)
    response = console.post("/console/me/repairs", _form(case))
    assert response.status_code == 303 and response.headers["Location"] == "/console/me"
    application = session.scalars(select(RepairApplication).order_by(RepairApplication.id.desc())).first()
    assert (application.activity, application.status, application.evidence_ref) == (
        "offline_training",
        "submitted",
        "certificate 0042",
    )
    page = text(console.get("/console/me"))
    assert f"修复申请 #{application.id} 已提交" in page and "待所在机构审核" in page


def test_an_application_through_an_institution_the_person_never_worked_at_is_refused(
    console, case, admin, session
):
    elsewhere = admin.institution()
    console.sign_in(case.practitioner_key)
    # the form offers only their own institutions; a forged choice is refused as a choice
    assert elsewhere not in text(console.get("/console/me/repairs/new"))
    refused = console.post("/console/me/repairs/check", _form(case, institution_code=elsewhere))
    assert refused.status_code == 422
    before = _count(session, RepairApplication)
    assert console.post("/console/me/repairs", _form(case, institution_code=elsewhere)).status_code == 422
    assert _count(session, RepairApplication) == before


def test_a_completion_date_in_the_future_is_refused_at_its_field(console, case):
    console.sign_in(case.practitioner_key)
    tomorrow = (local_today() + dt.timedelta(days=1)).isoformat()
    refused = console.post("/console/me/repairs/check", _form(case, completed_on=tomorrow))
    assert refused.status_code == 422
    assert "完成日期不能晚于今天" in text(refused) and "docs/rules.md rule 19" in text(refused)
    unreadable = console.post("/console/me/repairs/check", _form(case, completed_on="3 June"))
    assert unreadable.status_code == 422


def test_the_appeal_form_shows_the_deadline_and_files_the_appeal(console, case, session):
    console.sign_in(case.practitioner_key)
    form = console.get(f"/console/me/decisions/{case.violation_id}/appeal")
    assert form.status_code == 200
    deadline = re.search(r"申诉期限 ?(\d{4}-\d{2}-\d{2})（含当日", words(form)).group(1)
    assert dt.date.fromisoformat(deadline) > local_today()
    empty = console.post(f"/console/me/decisions/{case.violation_id}/appeal", {"reason": "  "})
    assert empty.status_code == 422 and "请写明申诉理由" in text(empty)
    filed = console.post(f"/console/me/decisions/{case.violation_id}/appeal", {"reason": "我当周休假"})
    assert filed.status_code == 303
    appeal = session.scalars(select(Appeal).where(Appeal.violation_id == case.violation_id)).one()
    assert (appeal.reason, appeal.deadline.isoformat(), appeal.status) == ("我当周休假", deadline, "open")
    page = text(console.get("/console/me"))
    assert "申诉已提交" in page and "待复核" in page
    again = console.post(f"/console/me/decisions/{case.violation_id}/appeal", {"reason": "再次申诉"})
    assert again.status_code == 409 and "只能申诉一次" in text(again)


def test_an_appeal_after_its_window_is_refused_with_rule_23(console, case, inspector, session):
    old = inspector.violation(case.person, case.hospital, decided_on="2026-04-10")
    console.sign_in(case.practitioner_key)
    page = text(console.get(f"/console/me/decisions/{old['id']}/appeal"))
    assert "不能再提出申诉" in page
    refused = console.post(f"/console/me/decisions/{old['id']}/appeal", {"reason": "too late"})
    assert refused.status_code == 422
    assert "申诉期限已过" in text(refused) and "docs/rules.md rule 23" in text(refused)
    assert session.scalar(select(Appeal.id).where(Appeal.violation_id == old["id"])) is None


def test_another_persons_decision_is_not_found_to_read_or_appeal(console, case, admin, inspector, session):
    other, hospital = admin.person()
    theirs = inspector.violation(other, hospital, decided_on=local_today().isoformat())
    console.sign_in(case.practitioner_key)
    assert console.get(f"/console/me/decisions/{theirs['id']}/appeal").status_code == 404
    refused = console.post(f"/console/me/decisions/{theirs['id']}/appeal", {"reason": "not mine"})
    assert refused.status_code == 404 and "没有找到此记录" in text(refused)
    assert session.scalar(select(Appeal.id).where(Appeal.violation_id == theirs["id"])) is None
    assert other not in text(console.get("/console/me"))


def test_a_termination_of_an_earlier_year_is_still_shown_with_its_bar(console, admin, inspector, session):
    # the page's year is this one; a sanction imposed last year is listed all the same (its bar may run)
    person, hospital = admin.person()
    decided = dt.date(local_today().year - 1, 6, 1)
    inspector.violation(
        person, hospital, behaviour_code="B4-01", responsibility="main", decided_on=decided.isoformat()
    )
    console.sign_in(make_key(session, "practitioner", practitioner_code=person))
    page = words(console.get("/console/me"))
    assert f"{local_today().year} 年记分" in page
    assert "终止医保支付资格" in page and f"{decided.isoformat()} 至" in page
    assert "前不得再次登记备案" in page and "docs/rules.md rule 17" in page
