"""The inspector's decision form: the preview comes before posting (what the decision would record,
the person's year after it, what it would trigger), writes nothing, and what is then confirmed is
recorded only while the preview still says the same."""

from __future__ import annotations

from conftest import PREVIEW, confirm, preview_form, text, words
from factories import Api, make_key
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
from points_service.rules.calendar import add_years

RECORD = "/console/inspector/decisions"


def _decision(case, **over) -> dict:
    return {
        "case_ref": "HB-PREVIEW-1",
        "practitioner_code": case.person,
        "institution_code": case.hospital,
        "behaviour_code": "B3-01",
        "responsibility": "main",
        "occurred_on": local_today().isoformat(),
        "decided_on": local_today().isoformat(),
        **over,
    }


def _written(session) -> tuple:
    """Every kind of row a decision writes, counted, and the person's stored state."""
    counts = tuple(
        session.scalar(select(func.count()).select_from(model))
        for model in (Violation, LedgerEntry, Measure, OutboxEvent, AuditEvent)
    )
    versions = select(PractitionerState.ledger_version).order_by(PractitionerState.practitioner_id)
    return (*counts, tuple(session.scalars(versions)))


def test_the_preview_shows_what_the_post_then_records(console, case, session, client, admin_key):
    console.sign_in(make_key(session, "inspector"))
    before = _written(session)
    preview = console.post(PREVIEW, _decision(case))
    assert preview.status_code == 200
    page = words(preview)
    today = local_today()
    barred = add_years(today, 1)
    # 4 points and 9 more make 13 in the year: termination, re-registration barred a year (rules 10, 17)
    assert f"预计：{case.person} 记 9 分，{today.year} 年累计 13 分" in page
    assert "此前累计 4 分" in page and "本年最高档次：终止医保支付资格" in page
    assert f"将触发：终止医保支付资格，{today} 起，{barred} 前不得再次登记备案" in page
    assert "今天的医保支付资格：终止医保支付资格" in page and "第二步：确认记录" in page
    assert _written(session) == before  # a preview records nothing at all

    recorded = console.post(RECORD, preview_form(preview))
    assert recorded.status_code == 303
    assert "已记录案件 HB-PREVIEW-1" in text(console.get("/console/inspector"))
    violation = session.scalars(select(Violation).where(Violation.case_ref == "HB-PREVIEW-1")).one()
    assert violation.points == 9
    standing = Api(client, admin_key).get(f"/v1/practitioners/{case.person}/standing")
    assert (standing["points_total"], standing["tier"]) == (13, "termination")
    assert standing["status"] == "terminated"
    [termination] = [s for s in standing["sanctions"] if s["kind"] == "termination"]
    assert (termination["start"], termination["barred_until"]) == (today.isoformat(), barred.isoformat())


def test_a_decision_the_rules_refuse_shows_the_rule_at_preview_and_writes_nothing(console, case, session):
    console.sign_in(make_key(session, "inspector"))
    before = _written(session)
    refused = console.post(PREVIEW, _decision(case, occurred_on="2024-06-01"))
    assert refused.status_code == 422
    page = text(refused)
    assert "未在该机构登记备案" in page and "docs/rules.md rules 4 and 6" in page
    assert "第二步：确认记录" not in page  # nothing to confirm
    assert _written(session) == before


def test_a_preview_no_longer_true_records_nothing_and_shows_the_new_one(console, case, session, inspector):
    console.sign_in(make_key(session, "inspector"))
    body = _decision(case, behaviour_code="B1-01", responsibility="important")
    shown = preview_form(console.post(PREVIEW, body))
    # another decision about the person arrives between the preview and its confirmation
    inspector.violation(
        case.person, case.hospital, behaviour_code="B1-01", decided_on=local_today().isoformat()
    )
    before = _written(session)
    stale = console.post(RECORD, shown)
    assert stale.status_code == 409
    page = words(stale)
    assert "预览之后情况已有变化" in page and "未作记录" in page
    assert f"{local_today().year} 年累计 7 分" in page  # 4 + 1 + 2: the new preview
    assert _written(session) == before
    again = console.post(RECORD, preview_form(stale))
    assert again.status_code == 303
    assert session.scalar(select(Violation.points).where(Violation.case_ref == "HB-PREVIEW-1")) == 2


def test_a_post_without_a_preview_records_nothing_and_shows_the_preview(console, case, session):
    console.sign_in(make_key(session, "inspector"))
    before = _written(session)
    unseen = console.post(RECORD, _decision(case))
    assert unseen.status_code == 409 and "请先预览" in text(unseen)
    assert "预计：" in text(unseen) and _written(session) == before
    assert confirm(console, _decision(case)).status_code == 303
    assert session.scalar(select(Violation.id).where(Violation.case_ref == "HB-PREVIEW-1")) is not None


def test_a_case_already_recorded_is_previewed_as_counted_once(console, case, session):
    console.sign_in(make_key(session, "inspector"))
    assert confirm(console, _decision(case)).status_code == 303
    again = console.post(PREVIEW, _decision(case))
    assert again.status_code == 200 and "已以相同内容记录" in text(again) and "不会重复计分" in text(again)
    other = console.post(PREVIEW, _decision(case, responsibility="general"))
    assert other.status_code == 409 and "此案件编号已记录过不同内容" in text(other)
