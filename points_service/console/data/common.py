"""Signing in, and the lines every page shows (a status, a sanction, a measure, a decision, a repair)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...rules.appeals import appeal_window
from ...rules.calendar import local_date
from ...services import keys as keys_svc
from ...services import queues
from ...services import repairs as repairs_svc
from ...services import standing as standing_svc
from ...services.access import Principal
from ...settings import Settings
from .. import labels

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ...persistence.models import Measure

# how many rows a queue page shows; the rest follow on later pages or once these are done
QUEUE_LIMIT = 200
ROSTER_PAGE = 100
NOTICE_PAGE = 50
# the person's file is read whole, in pages of this size (a file holds tens of entries)
FILE_PAGE = 500


# -- signing in -------------------------------------------------------------------------------------


def sign_in(db: Session, secret: str, *, now: dt.datetime) -> Principal:
    """The principal behind a key typed into the sign-in form (refused keys raise NotAuthenticated)."""
    return keys_svc.authenticate(db, secret, now=now)


def principal_for(db: Session, key_id: int, *, now: dt.datetime) -> Principal:
    """The signed-in key, checked again: revoked or expired raises NotAuthenticated."""
    return keys_svc.principal_for_key(db, key_id, now=now)


def touch_key(db: Session, principal: Principal, *, now: dt.datetime, secret: str | None = None) -> None:
    keys_svc.touch(db, secret, principal, now=now)


def role_label(principal: Principal) -> str:
    """Who is signed in, as the page header says it."""
    role = labels.label(labels.ROLES, principal.role)
    if principal.role == "hr_system":
        return f"{role} {principal.institution_code}（{principal.name}）"
    if principal.role == "practitioner":
        return f"{role} {principal.practitioner_code}"
    return f"{role}（{principal.name}）"


# -- lines the templates show -------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """Eligibility today (rule 18), in words."""

    status: str
    label: str
    eligible: bool
    explanation: str
    until_text: str
    rule: str


@dataclass(frozen=True)
class SanctionLine:
    kind: str
    label: str
    start: dt.date
    end: dt.date  # exclusive: the day eligibility (or registration) is possible again
    last_day: dt.date
    length: str
    basis: str
    shortened_by_months: int
    in_effect: bool


@dataclass(frozen=True)
class MeasureLine:
    id: int
    kind_label: str
    triggered_on: dt.date
    state: str
    state_label: str
    completed_on: dt.date | None
    note: str
    practitioner_code: str
    practitioner_name: str
    institution_code: str


@dataclass(frozen=True)
class FileEntry:
    on: dt.date
    what: str
    text: str
    by: str


@dataclass(frozen=True)
class DecisionLine:
    id: int
    case_ref: str
    practitioner_code: str
    institution_code: str
    behaviour_code: str
    behaviour: str
    responsibility: str
    occurred_on: dt.date
    decided_on: dt.date
    points: int
    state_label: str
    revoked: bool
    appeal_deadline: dt.date
    deadline_estimated: bool
    appeal_id: int | None
    appeal_status: str
    window_open: bool

    @property
    def can_appeal(self) -> bool:
        return self.window_open and self.appeal_id is None and not self.revoked


@dataclass(frozen=True)
class RepairLine:
    id: int
    practitioner_code: str
    practitioner_name: str
    institution_code: str
    activity_label: str
    completed_on: dt.date
    evidence_ref: str
    status: str
    status_label: str
    submitted_on: dt.date
    waiting_days: int
    version: int
    institution_comment: str
    agency_comment: str
    credit_text: str
    # when each review was recorded: the file names its review items by these instants
    institution_reviewed_at: dt.datetime | None = None
    agency_reviewed_at: dt.datetime | None = None


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


def status(standing: standing_svc.Standing) -> Status:
    status, until, barred = standing.status, standing.status_until, standing.barred_until
    if status == "active":
        explanation = "已登记备案，未被暂停或终止医保支付资格，医保基金正常结算其提供的服务。"
        until_text = (
            f"自 {until} 起状态将改变（登记备案到期或处分开始）。" if until else "目前没有已知的到期日。"
        )
        rule = "docs/rules.md rule 18"
    elif status == "suspended":
        explanation = "医保支付资格暂停中：暂停期间，医保基金不结算其提供的服务（急诊、抢救除外）。"
        until_text = f"自 {until} 起恢复。" if until else ""
        rule = "docs/rules.md rules 10, 11, 15"
    elif status == "terminated":
        explanation = "医保支付资格已终止：所有登记备案已结束，医保基金不结算其提供的服务（急诊、抢救除外）。"
        until_text = (f"{barred} 前不得再次登记备案" if barred else "") + (
            f"；自 {until} 起有新的登记备案。" if until else "。"
        )
        rule = "docs/rules.md rule 17"
    else:
        explanation = "今天没有有效的登记备案，医保基金不结算其提供的服务。"
        until_text = f"自 {until} 起有新的登记备案。" if until else ""
        rule = "docs/rules.md rule 4"
    return Status(
        status=status,
        label=labels.label(labels.STATUSES, status),
        # rule 18: only an active registration, neither suspended nor terminated, settles
        eligible=status == "active",
        explanation=explanation,
        until_text=until_text,
        rule=rule,
    )


def sanction_line(s: standing_svc.Sanction, today: dt.date) -> SanctionLine:
    if s.kind == "suspension":
        assert s.end is not None
        end, length, label = s.end, f"{s.months} 个月", "暂停医保支付资格"
    else:
        assert s.barred_until is not None
        end, length, label = s.barred_until, f"{s.bar_years} 年内不得再次登记备案", "终止医保支付资格"
    return SanctionLine(
        kind=s.kind,
        label=label,
        start=s.start,
        end=end,
        last_day=end - dt.timedelta(days=1),
        length=length,
        basis=labels.label(labels.BASES, s.basis),
        shortened_by_months=s.shortened_by_months,
        in_effect=s.start <= today < end,
    )


def measure_line(
    m: Measure, practitioner_code: str, practitioner_name: str, institution_code: str
) -> MeasureLine:
    return MeasureLine(
        id=m.id,
        kind_label=labels.label(labels.MEASURE_KINDS, m.kind),
        triggered_on=m.triggered_on,
        state=m.state,
        state_label=labels.label(labels.MEASURE_STATES, m.state),
        completed_on=m.completed_on,
        note=m.note or "",
        practitioner_code=practitioner_code,
        practitioner_name=practitioner_name,
        institution_code=institution_code,
    )


def decision_line(row: queues.DecisionRow, *, settings: Settings, today: dt.date) -> DecisionLine:
    decision, appeal = row.decision, row.appeal
    violation = decision.violation
    window = appeal_window(
        violation.decided_on,
        settings.policies.get(violation.profile_id).appeal_window_working_days,
        settings.calendar,
    )
    return DecisionLine(
        id=violation.id,
        case_ref=violation.case_ref,
        practitioner_code=violation.practitioner.code,
        institution_code=violation.institution.code,
        behaviour_code=violation.behaviour_code,
        behaviour=labels.behaviour(violation.behaviour_code),
        responsibility=labels.label(labels.RESPONSIBILITIES, violation.responsibility),
        occurred_on=violation.occurred_on,
        decided_on=violation.decided_on,
        points=decision.current_points,
        state_label=labels.label(labels.DECISION_STATES, decision.state),
        revoked=decision.state == "revoked",
        appeal_deadline=window.deadline,
        deadline_estimated=window.estimated,
        appeal_id=appeal.id if appeal else None,
        appeal_status=labels.label(labels.APPEAL_STATUSES, appeal.status) if appeal else "",
        window_open=today <= window.deadline,
    )


def credit_text(credit: Any) -> str:
    """What an approved repair removed, as the rules now compute it (rules.RepairCredit)."""
    if credit is None:
        return ""
    shortened = labels.shortened_term(credit.shortened, credit.months_shortened)
    return f"减去 {credit.points} 分" + (f"，{shortened}" if shortened else "")


def repair_lines(repairs: Iterable[repairs_svc.Repair], today: dt.date) -> list[RepairLine]:
    out = []
    for repair in repairs:
        a = repair.application
        submitted_on = local_date(a.submitted_at)
        out.append(
            RepairLine(
                id=a.id,
                practitioner_code=a.practitioner.code,
                practitioner_name=a.practitioner.name,
                institution_code=a.institution.code,
                activity_label=labels.label(labels.ACTIVITIES, a.activity),
                completed_on=a.completed_on,
                evidence_ref=a.evidence_ref,
                status=a.status,
                status_label=labels.label(labels.REPAIR_STATUSES, a.status),
                submitted_on=submitted_on,
                waiting_days=max((today - submitted_on).days, 0),
                version=a.version,
                institution_comment=a.institution_comment or "",
                agency_comment=a.agency_comment or "",
                credit_text=credit_text(repair.credit),
                institution_reviewed_at=a.institution_reviewed_at,
                agency_reviewed_at=a.agency_reviewed_at,
            )
        )
    return out
