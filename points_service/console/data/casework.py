"""Repairs (check, submit, review), appeals, and the hospital's roster and talks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...rules.calendar import local_date
from ...rules.policy import ADJUSTMENTS, REPAIR_ACTIVITIES
from ...services import appeals as appeals_svc
from ...services import eligibility as eligibility_svc
from ...services import measures as measures_svc
from ...services import queues
from ...services import registry as registry_svc
from ...services import repairs as repairs_svc
from ...services import violations as violations_svc
from ...services.access import Principal, visible_practitioner
from ...settings import Settings
from .. import labels
from .common import (
    QUEUE_LIMIT,
    ROSTER_PAGE,
    Choice,
    DecisionLine,
    MeasureLine,
    RepairLine,
    credit_text,
    decision_line,
    measure_line,
    repair_lines,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


# -- repairs: check, submit, review -----------------------------------------------------------------


def repair_institutions(db: Session, principal: Principal, *, now: dt.datetime) -> list[Choice]:
    """The institutions a person may apply through: those they are or were registered at, the
    ones they work at today first."""
    practitioner = visible_practitioner(db, principal, principal.practitioner_code or "")
    registrations = registry_svc.registrations_of(db, principal, practitioner, now=now)
    seen: dict[str, bool] = {}
    for r in sorted(registrations, key=lambda r: not r.active):
        seen.setdefault(r.institution_code, r.active)
    out = []
    for code, active in seen.items():
        institution = registry_svc.get_institution(db, principal, code)
        out.append(Choice(code, f"{institution.name}（{code}）" + ("" if active else "，已结束")))
    return out


def activity_choices() -> list[Choice]:
    return [Choice(a, labels.ACTIVITIES[a]) for a in REPAIR_ACTIVITIES]


@dataclass(frozen=True)
class RepairCheck:
    allowed: bool
    headline: str
    lines: list[str]
    rule: str


def check_repair(
    db: Session, principal: Principal, form: dict[str, Any], *, settings: Settings, now: dt.datetime
) -> RepairCheck:
    """The rules' answer to an application, as if the agency approved it today (repairs.preview_repair,
    the answer of POST /v1/repairs/preview; nothing written)."""
    answer = repairs_svc.preview_repair(
        db, principal, _submit_command(principal, form), policies=settings.policies, now=now
    )
    year = f"{answer.score_year} 年"
    if not answer.allowed:
        reason, rule = labels.rule_reason(answer.refusal or "")
        return RepairCheck(
            allowed=False,
            headline=f"这项申请不能成功：{reason}。",
            lines=[f"{year}目前累计 {answer.points_total} 分。"],
            rule=rule,
        )
    lines = [
        f"{year}目前累计 {answer.points_total} 分；"
        f"这项活动按规则（{answer.profile}）可抵减 {answer.activity_value} 分。",
        f"如经办机构今天批准，将减去 {answer.credit} 分，"
        f"{year}累计变为 {answer.points_total - answer.credit} 分。",
    ]
    if answer.limited_by:
        reason, limit_rule = labels.rule_reason(answer.limited_by)
        lines.append(f"抵减分值受限：{reason}（{limit_rule}）。")
    shortened = labels.shortened_term(answer.shortened, answer.months_shortened)
    lines.append(
        f"{shortened}（每修复 3 分缩短 1 个月，docs/rules.md rule 22）。"
        if shortened
        else "不缩短暂停期或禁止登记期（没有正在执行的期限，或本年修复分值未满 3 分的整数倍）。"
    )
    lines.append(
        "申请须先经所在机构审核，再经医保经办机构审核；批准之日生效，实际结果以批准当日的规则计算为准。"
    )
    return RepairCheck(True, f"可以申请：预计减去 {answer.credit} 分。", lines, "docs/rules.md rules 19–22")


def _submit_command(principal: Principal, form: dict[str, Any]) -> repairs_svc.SubmitRepair:
    return repairs_svc.SubmitRepair(
        practitioner_code=principal.practitioner_code or "",
        institution_code=form["institution_code"],
        activity=form["activity"],
        completed_on=form["completed_on"],
        evidence_ref=form["evidence_ref"],
    )


def submit_repair(
    db: Session,
    principal: Principal,
    form: dict[str, Any],
    *,
    settings: Settings,
    now: dt.datetime,
    request_id: str,
) -> int:
    repair = repairs_svc.submit_repair(
        db,
        principal,
        _submit_command(principal, form),
        policies=settings.policies,
        now=now,
        request_id=request_id,
    )
    return repair.application.id


def review_repair(
    db: Session,
    principal: Principal,
    repair_id: int,
    *,
    decision: str,
    comment: str,
    version: int,
    stage: str,
    settings: Settings,
    now: dt.datetime,
    request_id: str,
) -> str:
    """One review step; answers what happened, in words."""
    repair = repairs_svc.review_repair(
        db,
        principal,
        repairs_svc.ReviewRepair(
            repair_id=repair_id, decision=decision, comment=comment or None, version=version
        ),
        stage=stage,
        policies=settings.policies,
        now=now,
        request_id=request_id,
    )
    outcome = labels.label(labels.REPAIR_STATUSES, repair.application.status)
    credit = credit_text(repair.credit)
    return f"修复申请 #{repair.application.id}：{outcome}" + (f"：{credit}" if credit else "") + "。"


# -- appeals ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppealForm:
    decision: DecisionLine
    today: dt.date


def appeal_form(
    db: Session, principal: Principal, violation_id: int, *, settings: Settings, now: dt.datetime
) -> AppealForm:
    """The decision a person is about to appeal, with its window (rule 23); 404 outside scope."""
    decision = violations_svc.get_violation(db, principal, violation_id)
    today = local_date(now)
    [row] = [
        row
        for row in queues.decisions_about(db, principal, decision.violation.practitioner.code)
        if row.decision.violation.id == violation_id
    ]
    return AppealForm(decision_line(row, settings=settings, today=today), today)


def file_appeal(
    db: Session,
    principal: Principal,
    violation_id: int,
    reason: str,
    *,
    settings: Settings,
    now: dt.datetime,
    request_id: str,
) -> str:
    appeal = appeals_svc.file_appeal(
        db,
        principal,
        violation_id,
        reason,
        policies=settings.policies,
        calendar=settings.calendar,
        now=now,
        request_id=request_id,
    )
    return f"申诉已提交（编号 #{appeal.id}），等待医保经办机构复核。"


@dataclass(frozen=True)
class AppealLine:
    id: int
    version: int
    filed_on: dt.date
    deadline: dt.date
    deadline_estimated: bool
    reason: str
    status_label: str
    open: bool
    decision: DecisionLine
    practitioner_name: str
    points_range: tuple[int, int]


def appeal_for_review(
    db: Session, principal: Principal, appeal_id: int, *, settings: Settings, now: dt.datetime
) -> AppealLine:
    appeal = appeals_svc.get_appeal(db, principal, appeal_id)
    decision = violations_svc.get_violation(db, principal, appeal.violation_id)
    return appeal_line(queues.DecisionRow(decision, appeal), settings=settings, today=local_date(now))


def appeal_line(row: queues.DecisionRow, *, settings: Settings, today: dt.date) -> AppealLine:
    appeal, violation = row.appeal, row.decision.violation
    assert appeal is not None
    policy = settings.policies.get(violation.profile_id)
    # an amendment may move within the band or one band either way, as an inspector could (rule 8)
    ranges = [policy.allowed_points(violation.behaviour_code, a) for a in (None, *ADJUSTMENTS)]
    return AppealLine(
        id=appeal.id,
        version=appeal.version,
        filed_on=appeal.filed_on,
        deadline=appeal.deadline,
        deadline_estimated=appeal.deadline_estimated,
        reason=appeal.reason,
        status_label=labels.label(labels.APPEAL_STATUSES, appeal.status),
        open=appeal.status == "open",
        decision=decision_line(row, settings=settings, today=today),
        practitioner_name=violation.practitioner.name,
        points_range=(min(r[0] for r in ranges), max(r[1] for r in ranges)),
    )


def decide_appeal(
    db: Session,
    principal: Principal,
    appeal_id: int,
    *,
    outcome: str,
    points: int | None,
    reason: str,
    version: int,
    settings: Settings,
    now: dt.datetime,
    request_id: str,
) -> str:
    appeal = appeals_svc.decide_appeal(
        db,
        principal,
        appeals_svc.DecideAppeal(
            appeal_id=appeal_id, outcome=outcome, reason=reason, points=points, version=version
        ),
        policies=settings.policies,
        now=now,
        request_id=request_id,
    )
    return f"申诉 #{appeal.id} 已复核：{labels.label(labels.APPEAL_STATUSES, appeal.status)}。"


# -- the hospital -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HospitalHome:
    institution_code: str
    institution_name: str
    today: dt.date
    repairs: list[RepairLine]
    talks: list[MeasureLine]


def hospital_home(db: Session, principal: Principal, *, now: dt.datetime) -> HospitalHome:
    """The applications waiting for this institution's review and its talks to hold."""
    today = local_date(now)
    institution = registry_svc.get_institution(db, principal, principal.institution_code or "")
    repairs = repair_lines(queues.repair_queue(db, principal, status="submitted", limit=QUEUE_LIMIT), today)
    measures, _ = measures_svc.list_measures(
        db, principal, institution_code=institution.code, state="pending", after=None, limit=QUEUE_LIMIT
    )
    talks = [measure_line(m, m.practitioner.code, m.practitioner.name, m.institution.code) for m in measures]
    return HospitalHome(institution.code, institution.name, today, repairs, talks)


@dataclass(frozen=True)
class RosterLine:
    code: str
    name: str
    status: str
    status_label: str
    eligible: bool
    until: dt.date | None
    barred_until: dt.date | None


@dataclass(frozen=True)
class Roster:
    institution_code: str
    institution_name: str
    today: dt.date
    lines: list[RosterLine]
    next_after: str | None


def roster(db: Session, principal: Principal, *, after: str | None, now: dt.datetime) -> Roster:
    today = local_date(now)
    institution = registry_svc.get_institution(db, principal, principal.institution_code or "")
    answers, last = eligibility_svc.roster(
        db, principal, institution.code, at=today, after=after, limit=ROSTER_PAGE
    )
    names = queues.names_of(db, principal, {a.practitioner_code for a in answers})
    lines = [
        RosterLine(
            code=a.practitioner_code,
            name=names.get(a.practitioner_code, ""),
            status=a.eligibility.status,
            status_label=labels.label(labels.STATUSES, a.eligibility.status),
            eligible=a.eligibility.eligible,
            until=a.eligibility.until,
            barred_until=a.eligibility.barred_until,
        )
        for a in answers
    ]
    return Roster(institution.code, institution.name, today, lines, last)


def complete_talk(
    db: Session,
    principal: Principal,
    measure_id: int,
    *,
    completed_on: dt.date,
    note: str,
    now: dt.datetime,
    request_id: str,
) -> str:
    measure = measures_svc.complete_measure(
        db,
        principal,
        measure_id,
        completed_on=completed_on,
        note=note or None,
        now=now,
        request_id=request_id,
    )
    return (
        f"{labels.label(labels.MEASURE_KINDS, measure.kind)} #{measure.id} 已记录为完成（{completed_on}）。"
    )
