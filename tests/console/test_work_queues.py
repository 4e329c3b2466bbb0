"""The hospital's, the inspector's, the reviewer's and the admin's pages: each shows what its
role's API calls show, does what they do, and refuses what they refuse (another institution's
records are not found; a stale version is a conflict with a message)."""

from __future__ import annotations

import re

from conftest import PREVIEW, Console, confirm, text
from factories import Api, make_key
from sqlalchemy import select

from points_service.clock import local_today
from points_service.persistence.models import Appeal, Measure, RepairApplication, Violation


def _submit(case, client) -> dict:
    """The person applies through the API (the console's own form is tested on its page)."""
    return Api(client, case.practitioner_key).post(
        "/v1/repairs",
        {
            "practitioner_code": case.person,
            "institution_code": case.hospital,
            "activity": "offline_training",
            "completed_on": local_today().isoformat(),
            "evidence_ref": "certificate 0042",
        },
    )


def _review(console, stage_path: str, repair: dict, decision: str = "approve", **over):
    return console.post(
        stage_path.format(id=repair["id"]),
        {"decision": decision, "comment": "证书已核验", "version": repair["version"], **over},
    )


HOSPITAL_REVIEW = "/console/hospital/repairs/{id}/review"
AGENCY_REVIEW = "/console/reviewer/repairs/{id}/review"


# -- the hospital -------------------------------------------------------------------------------------


def test_the_roster_lists_each_person_with_their_status_today(console, case, admin, inspector):
    suspended = admin.practitioner()
    admin.register(suspended, case.hospital)
    inspector.violation(
        suspended,
        case.hospital,
        behaviour_code="B3-01",
        responsibility="main",
        decided_on=local_today().isoformat(),
    )
    console.sign_in(case.hr_key)
    page = text(console.get("/console/hospital/roster"))
    assert f"Person {case.person}" in page and f"Person {suspended}" in page
    rows = dict(re.findall(r"<td data-label=\"人员编码\">(\w+)</td>.*?class=\"badge (\w+)\"", page, re.S))
    assert rows == {case.person: "active", suspended: "suspended"}
    assert "起改变" in page  # the suspended person's `until`


def test_the_roster_pages_on_after_the_last_code_shown(console, case, admin):
    later = admin.practitioner(code_=case.person + "Z")
    admin.register(later, case.hospital)
    console.sign_in(case.hr_key)
    rest = text(console.get("/console/hospital/roster", query_string={"after": case.person}))
    assert later in rest and f">{case.person}<" not in rest


def test_the_hospital_sees_its_pending_application_and_approves_it_for_the_agency(
    console, case, client, session
):
    repair = _submit(case, client)
    console.sign_in(case.hr_key)
    page = text(console.get("/console/hospital"))
    assert f"#{repair['id']}" in page and f"Person {case.person}" in page and "线下培训" in page
    response = _review(console, HOSPITAL_REVIEW, repair)
    assert response.status_code == 303
    assert "所在机构已同意，待经办机构审核" in text(console.get("/console/hospital"))
    application = session.get(RepairApplication, repair["id"])
    assert (application.status, application.institution_comment) == ("institution_approved", "证书已核验")


def test_a_stale_version_is_refused_with_a_clear_message_and_changes_nothing(console, case, client, session):
    repair = _submit(case, client)
    console.sign_in(case.hr_key)
    refused = _review(console, HOSPITAL_REVIEW, repair, version=repair["version"] + 1)
    assert refused.status_code == 409
    assert "不是最新版本" in text(refused) and "请刷新页面" in text(refused)
    assert session.get(RepairApplication, repair["id"]).status == "submitted"
    # a second review of an application already reviewed is a conflict too
    assert _review(console, HOSPITAL_REVIEW, repair).status_code == 303
    again = _review(console, HOSPITAL_REVIEW, repair, version=repair["version"] + 1)
    assert again.status_code == 409


def test_another_institutions_application_is_not_found_and_unchanged(console, case, client, admin, session):
    repair = _submit(case, client)
    other = admin.institution()
    other_hr = Console(console.client.application.test_client())
    other_hr.sign_in(make_key(session, "hr_system", institution_code=other))
    assert f"#{repair['id']}" not in text(other_hr.get("/console/hospital"))
    assert case.person not in text(other_hr.get("/console/hospital/roster"))
    refused = _review(other_hr, HOSPITAL_REVIEW, repair)
    assert refused.status_code == 404 and "没有找到此记录" in text(refused)
    assert session.get(RepairApplication, repair["id"]).status == "submitted"


def test_the_hospital_records_a_talk_it_held(console, admin, inspector, session):
    person, hospital = admin.person()
    inspector.violation(
        person, hospital, behaviour_code="B1-01", responsibility="main", decided_on=local_today().isoformat()
    )
    talk = session.scalars(
        select(Measure).join(Violation).where(Violation.institution_id == Measure.institution_id)
    ).all()
    [talk] = [
        m
        for m in talk
        if m.kind == "institution_talk" and m.state == "pending" and m.triggered_on == local_today()
    ][-1:]
    console.sign_in(make_key(session, "hr_system", institution_code=hospital))
    page = text(console.get("/console/hospital"))
    assert f"#{talk.id}" in page and "所在机构谈话提醒" in page
    done = console.post(
        f"/console/hospital/talks/{talk.id}/complete",
        {"completed_on": local_today().isoformat(), "note": "已与科室主任谈话"},
    )
    assert done.status_code == 303
    session.refresh(talk)
    assert (talk.state, talk.note) == ("completed", "已与科室主任谈话")
    again = console.post(
        f"/console/hospital/talks/{talk.id}/complete", {"completed_on": local_today().isoformat()}
    )
    assert again.status_code == 409 and "已完成" in text(again)


# -- the inspector ----------------------------------------------------------------------------------


def _decision(case, **over) -> dict:
    return {
        "case_ref": "HB-2026-CONSOLE-1",
        "practitioner_code": case.person,
        "institution_code": case.hospital,
        "behaviour_code": "B1-01",
        "responsibility": "important",
        "occurred_on": local_today().isoformat(),
        "decided_on": local_today().isoformat(),
        **over,
    }


def test_the_inspector_records_a_decision_and_sees_it_among_those_posted(console, case, session):
    console.sign_in(make_key(session, "inspector"))
    form = text(console.get("/console/inspector"))
    # the form posts to the preview, whose own form posts to the route that records
    assert f'action="{PREVIEW}"' in form
    response = confirm(console, _decision(case))
    assert response.status_code == 303
    page = text(console.get("/console/inspector"))
    assert "已记录案件 HB-2026-CONSOLE-1" in page and "记 2 分" in page and "累计 6 分" in page
    assert "HB-2026-CONSOLE-1" in page.split("本密钥录入的决定")[1]
    violation = session.scalars(select(Violation).where(Violation.case_ref == "HB-2026-CONSOLE-1")).one()
    assert (violation.points, violation.responsibility) == (2, "important")
    # the same case posted again counts once
    replay = confirm(console, _decision(case))
    assert replay.status_code == 303 and "未重复计分" in text(console.get("/console/inspector"))


def test_a_decision_the_rules_refuse_is_shown_with_its_rule_and_writes_nothing(console, case, session):
    console.sign_in(make_key(session, "inspector"))
    refused = console.post(
        "/console/inspector/decisions", _decision(case, case_ref="HB-EARLY", occurred_on="2024-06-01")
    )
    assert refused.status_code == 422
    assert "未在该机构登记备案" in text(refused) and "docs/rules.md rules 4 and 6" in text(refused)
    assert session.scalar(select(Violation.id).where(Violation.case_ref == "HB-EARLY")) is None
    mitigated = console.post(
        "/console/inspector/decisions", _decision(case, case_ref="HB-MITIGATED", adjustment="mitigated")
    )
    assert mitigated.status_code == 422 and "docs/rules.md rule 8" in text(mitigated)


# -- the reviewer -----------------------------------------------------------------------------------


def test_the_reviewer_sees_open_appeals_by_deadline_and_decides_one_with_a_reason(
    console, case, session, client
):
    Api(client, case.practitioner_key).post(
        f"/v1/violations/{case.violation_id}/appeals", {"reason": "当周休假"}
    )
    appeal = session.scalars(select(Appeal).where(Appeal.violation_id == case.violation_id)).one()
    console.sign_in(make_key(session, "reviewer"))
    page = text(console.get("/console/reviewer"))
    assert f"#{appeal.id}" in page and appeal.deadline.isoformat() in page
    form = text(console.get(f"/console/reviewer/appeals/{appeal.id}"))
    assert "当周休假" in form and "复核决定" in form
    missing = console.post(
        f"/console/reviewer/appeals/{appeal.id}",
        {"outcome": "amended", "reason": "次要责任", "version": appeal.version},
    )
    assert missing.status_code == 422 and "docs/rules.md rule 23" in text(missing)
    decided = console.post(
        f"/console/reviewer/appeals/{appeal.id}",
        {"outcome": "amended", "points": "3", "reason": "次要责任", "version": appeal.version},
    )
    assert decided.status_code == 303
    session.refresh(appeal)
    assert (appeal.status, appeal.outcome_points, appeal.outcome_reason) == ("amended", 3, "次要责任")
    assert (
        f"#{appeal.id}"
        not in text(console.get("/console/reviewer")).split("待复核的申诉")[1].split("</section>")[0]
    )
    # the person's page shows the outcome in their file
    person = Console(console.client.application.test_client())
    person.sign_in(case.practitioner_key)
    assert "变更记分，改为 3 分" in text(person.get("/console/me"))


def test_the_agency_approves_what_the_hospital_approved_and_the_credit_is_what_the_check_said(
    console, case, client, session
):
    person = Console(console.client.application.test_client())
    person.sign_in(case.practitioner_key)
    check = text(
        person.post(
            "/console/me/repairs/check",
            {
                "institution_code": case.hospital,
                "activity": "offline_training",
                "completed_on": local_today().isoformat(),
                "evidence_ref": "certificate 0042",
            },
        )
    )
    assert "预计减去 2 分" in check
    repair = _submit(case, client)
    hospital = Console(console.client.application.test_client())
    hospital.sign_in(case.hr_key)
    assert _review(hospital, HOSPITAL_REVIEW, repair).status_code == 303
    console.sign_in(make_key(session, "reviewer"))
    queue = text(console.get("/console/reviewer"))
    assert f"#{repair['id']}" in queue and "证书已核验" in queue
    current = session.get(RepairApplication, repair["id"]).version
    stale = _review(console, AGENCY_REVIEW, {**repair, "version": current - 1})
    assert stale.status_code == 409
    approved = _review(console, AGENCY_REVIEW, {**repair, "version": current})
    assert approved.status_code == 303
    assert f"修复申请 #{repair['id']}：已批准，已生效：减去 2 分" in text(console.get("/console/reviewer"))
    assert re.search(r'class="number">2</span> 分', text(person.get("/console/me")))


def test_an_admin_reads_the_queues_without_forms_and_cannot_decide(console, case, client, session):
    repair = _submit(case, client)
    hospital = Console(console.client.application.test_client())
    hospital.sign_in(case.hr_key)
    _review(hospital, HOSPITAL_REVIEW, repair)
    console.sign_in(make_key(session, "admin"))
    home = text(console.get("/console/admin"))
    assert "/console/reviewer" in home and "/console/admin/keys" in home
    keys = text(console.get("/console/admin/keys"))
    assert "points-service keys create --role practitioner --practitioner" in keys
    queue = console.get("/console/reviewer")
    assert queue.status_code == 200 and "只读" in text(queue)
    assert f"#{repair['id']}" in text(queue) and 'action="/console/reviewer/repairs' not in text(queue)
    refused = _review(
        console, AGENCY_REVIEW, {**repair, "version": session.get(RepairApplication, repair["id"]).version}
    )
    assert refused.status_code == 403
    assert session.get(RepairApplication, repair["id"]).status == "institution_approved"
