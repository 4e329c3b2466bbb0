"""The inspector's decisions (previewed, then posted), the reviewer's queues, the statistics and the
public notice register."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...rules.calendar import local_date
from ...rules.policy import ADJUSTMENTS, RESPONSIBILITIES
from ...services import notices as notices_svc
from ...services import queues
from ...services import statistics as statistics_svc
from ...services import violations as violations_svc
from ...services.access import Principal
from ...settings import Settings
from .. import labels
from .casework import AppealLine, appeal_line
from .common import NOTICE_PAGE, QUEUE_LIMIT, Choice, DecisionLine, RepairLine, decision_line, repair_lines

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


# -- the inspector ----------------------------------------------------------------------------------


def behaviour_choices(settings: Settings) -> list[Choice]:
    catalogue = settings.policies.get(settings.policies.default_id).catalogue
    return [Choice(code, f"{code} {labels.behaviour(code)}") for code in sorted(catalogue)]


def responsibility_choices() -> list[Choice]:
    return [Choice(r, labels.RESPONSIBILITIES[r]) for r in RESPONSIBILITIES]


def adjustment_choices() -> list[Choice]:
    return [Choice("", "不调整"), *(Choice(a, labels.ADJUSTMENTS[a]) for a in ADJUSTMENTS)]


def decisions_posted(
    db: Session, principal: Principal, *, settings: Settings, now: dt.datetime
) -> list[DecisionLine]:
    today = local_date(now)
    rows = queues.decisions_recorded_by(db, principal, limit=QUEUE_LIMIT)
    return [decision_line(row, settings=settings, today=today) for row in rows]


def _record_command(form: dict[str, Any]) -> violations_svc.RecordViolation:
    return violations_svc.RecordViolation(
        case_ref=form["case_ref"],
        practitioner_code=form["practitioner_code"],
        institution_code=form["institution_code"],
        behaviour_code=form["behaviour_code"],
        responsibility=form["responsibility"],
        occurred_on=form["occurred_on"],
        decided_on=form["decided_on"],
        points=form.get("points"),
        adjustment=form.get("adjustment") or None,
        adjustment_reason=form.get("adjustment_reason") or None,
        description=form.get("description") or None,
    )


@dataclass(frozen=True)
class DecisionPreview:
    """What posting a decision would record, in words, and a digest of those words: the confirming
    post carries the digest, and is recorded only while the preview still says the same."""

    new: bool  # False: the case is recorded already with this content, and posting counts nothing
    headline: str
    lines: list[str]
    rule: str

    @property
    def digest(self) -> str:
        return hashlib.sha256("\n".join([self.headline, *self.lines]).encode("utf-8")).hexdigest()


def preview_decision(
    db: Session, principal: Principal, form: dict[str, Any], *, settings: Settings, now: dt.datetime
) -> DecisionPreview:
    """The service's preview (violations.preview_violation: the real post in a savepoint that is
    rolled back), in words: the points, the person's year after it, and what it would trigger."""
    previewed = violations_svc.preview_violation(
        db, principal, _record_command(form), policies=settings.policies, now=now
    )
    standing, case = previewed.standing, form["case_ref"]
    year = f"{standing.year} 年"
    after = (
        f"{year}累计 {standing.points_total} 分，本年最高档次：{labels.label(labels.TIERS, standing.tier)}；"
        f"今天的医保支付资格：{labels.label(labels.STATUSES, standing.status)}。"
    )
    if not previewed.created:
        return DecisionPreview(
            new=False,
            headline=f"案件 {case} 已以相同内容记录（#{previewed.violation.id}），确认后不会重复计分。",
            lines=[f"{standing.practitioner_code} 目前{after}"],
            rule="docs/rules.md rule 6",
        )
    points = previewed.current_points
    lines = [
        f"{standing.practitioner_code} 记 {points} 分（规则 {previewed.violation.profile_id}），"
        f"记入 {year}（此前累计 {standing.points_total - points} 分）。",
        f"记录后，{after}",
        *(_triggered(previewed.triggered) or ["不触发新的处理措施、暂停或终止。"]),
    ]
    total = f"{year}累计 {standing.points_total} 分"
    return DecisionPreview(
        new=True,
        headline=f"预计：{standing.practitioner_code} 记 {points} 分，{total}。",
        lines=lines,
        rule="docs/rules.md rules 6–17",
    )


def _triggered(triggered: violations_svc.Triggered) -> list[str]:
    """What a decision sets off (rule 12: only the more severe of a measure and a sanction)."""
    out = [
        f"将触发：{labels.label(labels.MEASURE_KINDS, m.kind)}（docs/rules.md rule 13）"
        for m in triggered.measures
    ]
    for s in triggered.sanctions:
        if s.kind == "suspension":
            assert s.end is not None
            out.append(
                f"将触发：暂停医保支付资格 {s.months} 个月，{s.start} 至 {s.end - dt.timedelta(days=1)}"
                f"（{s.end} 起恢复；docs/rules.md rules 10, 11, 15）"
            )
        else:
            out.append(
                f"将触发：终止医保支付资格，{s.start} 起，{s.barred_until} 前不得再次登记备案"
                "（docs/rules.md rule 17）"
            )
    return out


def record_decision(
    db: Session,
    principal: Principal,
    form: dict[str, Any],
    *,
    settings: Settings,
    now: dt.datetime,
    request_id: str,
) -> str:
    recorded = violations_svc.record_violation(
        db, principal, _record_command(form), policies=settings.policies, now=now, request_id=request_id
    )
    v, standing = recorded.violation, recorded.standing
    if not recorded.created:
        return f"案件 {v.case_ref} 此前已以相同内容记录（#{v.id}），未重复计分。"
    triggered = [labels.label(labels.TIERS, m.kind) for m in recorded.triggered.measures] + [
        labels.label(labels.TIERS, s.kind) for s in recorded.triggered.sanctions
    ]
    then = f"；触发：{'、'.join(triggered)}" if triggered else ""
    return (
        f"已记录案件 {v.case_ref}（#{v.id}）：{standing.practitioner_code} 记 {recorded.current_points} 分，"
        f"{standing.year} 年累计 {standing.points_total} 分{then}。"
    )


# -- the agency's reviewer --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewerHome:
    today: dt.date
    appeals: list[AppealLine]
    repairs: list[RepairLine]


def reviewer_home(db: Session, principal: Principal, *, settings: Settings, now: dt.datetime) -> ReviewerHome:
    """Open appeals by deadline and repair applications the institutions approved, oldest first."""
    today = local_date(now)
    appeals = [
        appeal_line(row, settings=settings, today=today)
        for row in queues.open_appeals(db, principal, limit=QUEUE_LIMIT)
    ]
    repairs = repair_lines(
        queues.repair_queue(db, principal, status="institution_approved", limit=QUEUE_LIMIT), today
    )
    return ReviewerHome(today, appeals, repairs)


# -- the agency's desk: statistics and the public notice register -------------------------------------


@dataclass(frozen=True)
class Figure:
    key: str  # `section.key`, as GET /v1/statistics?format=csv names the same figure
    label: str
    value: int


@dataclass(frozen=True)
class FigureTable:
    title: str
    rule: str
    figures: list[Figure]


@dataclass(frozen=True)
class Bar:
    key: str
    label: str
    value: int
    y: int
    width: int


@dataclass(frozen=True)
class BarChart:
    """A horizontal bar chart drawn by the template as inline SVG (no script, nothing loaded)."""

    title: str
    description: str
    width: int
    height: int
    label_width: int
    bar_height: int
    bars: list[Bar]


# the chart's geometry, in SVG user units (the picture scales with the page)
CHART_WIDTH, CHART_LABELS, CHART_ROW, CHART_BAR = 640, 170, 36, 24
CHART_BARS = CHART_WIDTH - CHART_LABELS - 90  # room for the value after the longest bar


def bar_chart(title: str, description: str, items: Sequence[tuple[str, str, int]]) -> BarChart:
    """Bars for (key, label, value) items, the longest as wide as the chart allows."""
    top = max((value for _, _, value in items), default=0)
    bars = [
        Bar(key, label, value, 12 + n * CHART_ROW, round(CHART_BARS * value / top) if top else 0)
        for n, (key, label, value) in enumerate(items)
    ]
    height = 12 + len(items) * CHART_ROW
    return BarChart(title, description, CHART_WIDTH, height, CHART_LABELS, CHART_BAR, bars)


@dataclass(frozen=True)
class StatisticsPage:
    year: int
    today: dt.date
    scope: str
    tables: list[FigureTable]
    measure_states: list[str]
    measures: list[tuple[str, list[Figure]]]  # each kind of task, its figures by state
    chart: BarChart


def statistics_page(
    db: Session,
    principal: Principal,
    *,
    year: int | None,
    province: str | None,
    institution_code: str | None,
    settings: Settings,
    now: dt.datetime,
) -> StatisticsPage:
    """The figures GET /v1/statistics answers for the same filters (statistics.statistics), in
    words, and the people by tier as a chart."""
    today = local_date(now)
    scope = statistics_svc.resolve_scope(
        db, principal, year=year or today.year, province=province, institution_code=institution_code
    )
    f = statistics_svc.statistics(db, principal, scope, policies=settings.policies, today=today)
    tiers = [
        (f"people_by_tier.{t}", labels.label(labels.TIERS, t), n) for t, n in f["people_by_tier"].items()
    ]
    tables = _figure_tables(f, tiers, settings=settings, today=today)
    states = list(next(iter(f["measures"].values()), {}))
    measures = [
        (
            labels.label(labels.MEASURE_KINDS, kind),
            [
                Figure(f"measures.{kind}.{state}", labels.label(labels.MEASURE_STATES, state), n)
                for state, n in by.items()
            ],
        )
        for kind, by in f["measures"].items()
    ]
    where = _scope_words(scope)
    chart = bar_chart(
        f"{scope.year} 年按最高档次的人数（{where}）",
        "、".join(f"{label} {n} 人" for _, label, n in tiers),
        tiers,
    )
    return StatisticsPage(
        year=scope.year,
        today=today,
        scope=where,
        tables=tables,
        measure_states=[labels.label(labels.MEASURE_STATES, s) for s in states],
        measures=measures,
        chart=chart,
    )


def _figure_tables(
    f: dict[str, Any], tiers: list[tuple[str, str, int]], *, settings: Settings, today: dt.date
) -> list[FigureTable]:
    """The answer's figures, each table under the rules it counts."""
    return [
        FigureTable(
            "生效的记分决定",
            "docs/rules.md rules 6–8, 24",
            [
                Figure("decisions.total", "决定数（件）", f["decisions"]),
                Figure("points.total", "记分合计（分）", f["points"]),
            ],
        ),
        FigureTable(
            f"今天（{today}）暂停或终止医保支付资格的人数",
            "docs/rules.md rules 15–18",
            [
                Figure("suspended_today.total", "暂停医保支付资格（人）", f["suspended_today"]),
                Figure("terminated_today.total", "终止医保支付资格（人）", f["terminated_today"]),
            ],
        ),
        FigureTable(
            "按本年最高档次的人数",
            "docs/rules.md rules 10, 13",
            [Figure(k, f"{t}（人）", n) for k, t, n in tiers],
        ),
        FigureTable(
            "按行为档次的决定数",
            "docs/rules.md rule 7",
            [
                Figure(f"decisions_by_band.{b}", _band(settings, b), n)
                for b, n in f["decisions_by_band"].items()
            ],
        ),
        FigureTable(
            "记分修复申请（按本年达到的状态）",
            "docs/rules.md rules 19–22",
            [
                *(
                    Figure(f"repairs.{status}", labels.label(labels.REPAIR_STATUSES, status), n)
                    for status, n in f["repairs"].items()
                    if status != "points_repaired"
                ),
                Figure(
                    "repairs.points_repaired", "本年批准修复的分值（分）", f["repairs"]["points_repaired"]
                ),
            ],
        ),
        FigureTable(
            "申诉（按本年达到的状态）",
            "docs/rules.md rule 23",
            [
                Figure(f"appeals.{s}", labels.label(labels.APPEAL_STATUSES, s), n)
                for s, n in f["appeals"].items()
            ],
        ),
    ]


def _band(settings: Settings, band: str) -> str:
    points = settings.policies.get(settings.policies.default_id).bands.get(int(band))
    return f"第 {band} 档（{min(points)}–{max(points)} 分）" if points else f"第 {band} 档"


def _scope_words(scope: statistics_svc.Scope) -> str:
    if scope.institution is not None:
        return f"机构 {scope.institution.name}（{scope.institution.code}）"
    if scope.province is not None:
        return f"省级区划代码 {scope.province}"
    return "全国"


@dataclass(frozen=True)
class NoticeLine:
    published_name: str
    institution_code: str
    institution_name: str
    behaviour_code: str
    behaviour: str
    points: int
    year: int
    published_on: dt.date


@dataclass(frozen=True)
class NoticesPage:
    year: int | None
    notices: list[NoticeLine]
    next_after: str | None  # where the next page starts: `<day of publication as an ordinal>.<id>`


def notices_page(
    db: Session, principal: Principal, *, year: int | None, after: tuple[int, int] | None, settings: Settings
) -> NoticesPage:
    """The public notice register (notices.list_notices, as GET /v1/notices answers it), newest first."""
    notices, last = notices_svc.list_notices(
        db, principal, year=year, province=None, after=after, limit=NOTICE_PAGE, policies=settings.policies
    )
    lines = [
        NoticeLine(
            published_name=n.published_name,
            institution_code=n.institution_code,
            institution_name=n.institution_name,
            behaviour_code=n.behaviour_code,
            behaviour=labels.behaviour(n.behaviour_code),
            points=n.points,
            year=n.year,
            published_on=n.published_on,
        )
        for n in notices
    ]
    return NoticesPage(year, lines, f"{last[0]}.{last[1]}" if last else None)
