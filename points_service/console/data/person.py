"""The practitioner's own page and their file in plain words."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...rules.calendar import local_date
from ...services import history as history_svc
from ...services import queues
from ...services import standing as standing_svc
from ...services.access import Principal, visible_practitioner
from ...settings import Settings
from .. import labels
from .common import (
    FILE_PAGE,
    QUEUE_LIMIT,
    DecisionLine,
    FileEntry,
    MeasureLine,
    RepairLine,
    SanctionLine,
    Status,
    decision_line,
    measure_line,
    repair_lines,
    sanction_line,
    status,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ...persistence.models import Appeal, Measure, Practitioner


# -- the practitioner -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PractitionerHome:
    code: str
    name: str
    category: str
    today: dt.date
    # this score year as the API's standing answers it (points, tier, measures, status today)
    standing: standing_svc.Standing
    tier_label: str
    status: Status
    emergency_note: str
    measures: list[MeasureLine]
    sanctions: list[SanctionLine]
    decisions: list[DecisionLine]
    repairs: list[RepairLine]
    file: list[FileEntry]


def practitioner_home(
    db: Session, principal: Principal, *, settings: Settings, now: dt.datetime
) -> PractitionerHome:
    """Everything the person's own page shows: points, tier, measures, sanctions, eligibility
    today, decisions (with their appeal windows), repair applications and the file."""
    today = local_date(now)
    code = principal.practitioner_code or ""
    practitioner = visible_practitioner(db, principal, code)
    standing = standing_svc.read_standing(db, principal, code, year=today.year, now=now)
    sanctions = standing_svc.read_sanctions(db, principal, code)
    rows = queues.decisions_about(db, principal, code)
    decisions = [decision_line(row, settings=settings, today=today) for row in rows]
    repairs = repair_lines(
        queues.repair_queue(db, principal, status=None, practitioner_code=code, limit=QUEUE_LIMIT), today
    )
    return PractitionerHome(
        code=practitioner.code,
        name=practitioner.name,
        category=labels.label(labels.CATEGORIES, practitioner.category),
        today=today,
        standing=standing,
        tier_label=labels.label(labels.TIERS, standing.tier),
        status=status(standing),
        emergency_note="暂停或终止期间，急诊、抢救发生的医疗费用仍由医保基金按规定结算。",
        measures=[measure_line(m, practitioner.code, practitioner.name, "") for m in standing.measures],
        sanctions=sorted((sanction_line(s, today) for s in sanctions), key=lambda s: s.start, reverse=True),
        decisions=decisions,
        repairs=list(reversed(repairs)),
        file=_file(db, principal, practitioner, sanctions, rows, repairs),
    )


# -- the person's file in plain words -----------------------------------------------------------------

FILE_KINDS = {
    "registration_created": "登记备案",
    "registration_ended": "登记备案结束",
    "decision": "记分决定",
    "appeal_filed": "提出申诉",
    "appeal_decided": "申诉复核结果",
    "reversal": "冲销记分",
    "repair_submitted": "申请记分修复",
    "repair_reviewed": "修复申请审核",
    "repair": "记分修复生效",
    "measure": "触发处理措施",
    "measure_completed": "处理措施完成",
    "measure_cancelled": "处理措施取消",
    "measure_withdrawn": "撤下通报",
    "sanction": "暂停或终止",
}


@dataclass(frozen=True)
class _Records:
    """What the file's entries name by id, read through the same scoped reads."""

    appeals: dict[int, Appeal]
    cases: dict[int, str]
    applications: dict[int, RepairLine]
    measures: dict[int, Measure]
    # the file lists sanctions in the order the rules imposed them, each on its first day
    sanctions: dict[dt.date, deque[standing_svc.Sanction]]


def _whole_file(db: Session, principal: Principal, practitioner: Practitioner) -> list[history_svc.Entry]:
    entries: list[history_svc.Entry] = []
    cursor: str | None = None
    while True:
        page = history_svc.history_page(db, principal, practitioner, cursor=cursor, limit=FILE_PAGE)
        entries.extend(page.items)
        if page.next_cursor is None:
            return entries
        cursor = page.next_cursor


def _file(
    db: Session,
    principal: Principal,
    practitioner: Practitioner,
    sanctions: Sequence[standing_svc.Sanction],
    rows: Sequence[queues.DecisionRow],
    repairs: Sequence[RepairLine],
) -> list[FileEntry]:
    """The person's file (一人一档, services.history) as sentences, newest first.

    The file's entries carry ids and dates; what each one was (the measure's kind, the appeal's
    outcome, the repair's activity) is read from the records those ids name.
    """
    by_start: dict[dt.date, deque[standing_svc.Sanction]] = defaultdict(deque)
    for s in sanctions:
        by_start[s.start].append(s)
    records = _Records(
        appeals={row.appeal.id: row.appeal for row in rows if row.appeal is not None},
        cases={row.decision.violation.id: row.decision.violation.case_ref for row in rows},
        applications={r.id: r for r in repairs},
        measures={m.id: m for m in queues.measures_about(db, principal, practitioner.id)},
        sanctions=by_start,
    )
    entries = [
        FileEntry(
            on=entry.on,
            what=FILE_KINDS.get(entry.kind, entry.kind),
            text=_file_text(entry, records),
            by=_actor(principal, entry.by),
        )
        for entry in _whole_file(db, principal, practitioner)
    ]
    return list(reversed(entries))


def _file_text(entry: history_svc.Entry, records: _Records) -> str:
    kind = entry.kind
    if kind == "registration_created":
        return f"在机构 {entry.institution_code} 登记备案"
    if kind == "registration_ended":
        if entry.by == "rules":
            return (
                f"因终止医保支付资格，在机构 {entry.institution_code} 的登记备案结束（docs/rules.md rule 17）"
            )
        detail = f"：{entry.detail}" if entry.detail else ""
        return f"在机构 {entry.institution_code} 的登记备案结束{detail}"
    if kind == "decision":
        code = entry.behaviour_code or ""
        return (
            f"案件 {entry.case_ref}（机构 {entry.institution_code}）："
            f"{labels.behaviour(code)}（{code}），记 {entry.points} 分"
        )
    if kind == "reversal":
        return f"经申诉复核，冲销原记分 {abs(entry.points or 0)} 分（docs/rules.md rule 24）"
    if kind in ("appeal_filed", "appeal_decided"):
        return _appeal_text(entry, records)
    if kind in ("repair_submitted", "repair_reviewed", "repair"):
        return _repair_text(entry, records)
    if kind.startswith("measure"):
        return _measure_text(entry, records)
    if kind == "sanction":
        return _sanction_text(entry, records)
    return entry.detail


def _appeal_text(entry: history_svc.Entry, records: _Records) -> str:
    appeal = records.appeals.get(entry.appeal_id or 0)
    case = records.cases.get(entry.violation_id or 0)
    about = f"针对案件 {case}" if case else "针对一项处理决定"
    if appeal is None:
        return about
    if entry.kind == "appeal_filed":
        return f"{about}提出申诉（申诉期限 {appeal.deadline}）：{appeal.reason}"
    points = f"，改为 {appeal.outcome_points} 分" if appeal.outcome_points else ""
    outcome = labels.label(labels.APPEAL_STATUSES, appeal.status)
    return f"{about}的申诉：{outcome}{points}。理由：{appeal.outcome_reason or ''}"


def _repair_text(entry: history_svc.Entry, records: _Records) -> str:
    application = records.applications.get(entry.repair_id or 0)
    if application is None:
        return "记分修复申请"
    if entry.kind == "repair_submitted":
        return (
            f"{application.activity_label}，完成于 {application.completed_on}"
            f"（凭证：{application.evidence_ref}）"
        )
    if entry.kind == "repair":
        credit = application.credit_text or "减去 0 分"
        return f"{application.activity_label}：{credit}（docs/rules.md rules 19–22）"
    if application.agency_reviewed_at is not None and entry.at == application.agency_reviewed_at:
        verdict = "批准" if application.status == "approved" else "不批准"
        comment = application.agency_comment
        return f"医保经办机构审核：{verdict}" + (f"。意见：{comment}" if comment else "")
    # the institution approved unless it was the one that rejected (before any agency review)
    approved = not (application.status == "rejected" and application.agency_reviewed_at is None)
    comment = application.institution_comment
    return f"所在机构审核：{'同意' if approved else '不同意'}" + (f"。意见：{comment}" if comment else "")


def _measure_text(entry: history_svc.Entry, records: _Records) -> str:
    measure = records.measures.get(entry.measure_id or 0)
    name = labels.label(labels.MEASURE_KINDS, measure.kind) if measure else "处理措施"
    if entry.kind == "measure":
        now = f"（现状：{labels.label(labels.MEASURE_STATES, measure.state)}）" if measure else ""
        return f"{name}{now}（docs/rules.md rule 13）"
    if entry.kind == "measure_cancelled":
        return f"{name}已取消：其起因已被撤销或变更"
    if entry.kind == "measure_withdrawn":
        return f"{name}已从公开的通报中撤下：其起因已被撤销或变更"
    state = labels.label(labels.MEASURE_STATES, measure.state) if measure else "已完成"
    note = f"：{measure.note}" if measure and measure.note else ""
    return f"{name}{state}{note}"


def _sanction_text(entry: history_svc.Entry, records: _Records) -> str:
    queue = records.sanctions.get(entry.on)
    if not queue:
        return "暂停或终止医保支付资格"
    s = queue.popleft()
    basis = labels.label(labels.BASES, s.basis)
    shortened = f"；已因修复缩短 {s.shortened_by_months} 个月" if s.shortened_by_months else ""
    if s.kind == "suspension":
        return f"暂停医保支付资格 {s.months} 个月（{basis}）：{s.start} 起，{s.end} 恢复{shortened}"
    return f"终止医保支付资格（{basis}）：{s.start} 起，{s.barred_until} 前不得再次登记备案{shortened}"


def _actor(principal: Principal, by: str | None) -> str:
    if by is None:
        return ""
    if by.startswith("key:"):
        _, key_id, name = by.split(":", 2)
        return "本人" if key_id == str(principal.key_id) and principal.role == "practitioner" else name
    return labels.ACTORS.get(by, by)
