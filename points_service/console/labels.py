"""The console's words: the API's codes and the rules' reasons as a person reads them, in Chinese.

Terms follow the national documents (医保发〔2024〕23号) and the glossary of docs/rules.md. Every
reason keeps the citation the API gives (`docs/rules.md rule N`), so a person can look it up and
an operator can match what the console said to what the API answers.
"""

from __future__ import annotations

import re

from ..services.errors import (
    Conflict,
    Forbidden,
    NotAuthenticated,
    NotFound,
    PointsServiceError,
    PreconditionFailed,
    RuleViolation,
    StaleVersion,
    WorkflowConflict,
)

ROLES = {
    "admin": "系统管理员",
    "inspector": "稽查人员",
    "reviewer": "医保经办机构复核人员",
    "hr_system": "定点医药机构",
    "practitioner": "医保相关人员",
}

CATEGORIES = {
    "physician": "医师",
    "nurse": "护士",
    "pharmacist": "药师",
    "technician": "技师",
    "settlement_reviewer": "医保费用审核结算人员",
    "pharmacy_principal": "定点零售药店主要负责人",
    "pharmacy_staff": "定点零售药店从业人员",
}

# eligibility (rule 18)
STATUSES = {
    "active": "正常",
    "suspended": "暂停医保支付资格",
    "terminated": "终止医保支付资格",
    "not_registered": "未登记备案",
    "unknown": "无此人员",
}

# rule 13: the year's tier, lowest first
TIERS = {
    "none": "无",
    "institution_talk": "所在机构谈话提醒",
    "agency_talk": "经办机构谈话提醒",
    "public_notice": "通报",
    "suspension": "暂停医保支付资格",
    "termination": "终止医保支付资格",
}

MEASURE_KINDS = {
    "institution_talk": "所在机构谈话提醒及政策培训",
    "agency_talk": "经办机构谈话提醒及定期培训",
    "public_notice": "通报",
}

MEASURE_STATES = {
    "pending": "待执行",
    "completed": "已完成",
    "published": "已公开",
    "cancelled": "已取消",
    # a published notice whose cause went is taken down from the register (rule 13)
    "withdrawn": "已撤下",
}

BASES = {"cumulative": "年度累计记分", "single_event": "一次性记分"}

RESPONSIBILITIES = {"general": "一般责任", "important": "重要责任", "main": "主要责任"}

ADJUSTMENTS = {"mitigated": "从轻", "aggravated": "从重"}

# rule 20
ACTIVITIES = {
    "online_study": "线上学习（含测试）",
    "offline_training": "线下培训（含测试）",
    "policy_promotion": "参与医保政策宣传",
    "inspection_participation": "参与飞行检查或专项检查",
}

REPAIR_STATUSES = {
    "submitted": "待所在机构审核",
    "institution_approved": "所在机构已同意，待经办机构审核",
    "approved": "已批准，已生效",
    "rejected": "未通过",
}

APPEAL_STATUSES = {
    "open": "待复核",
    "upheld": "维持原决定",
    "amended": "变更记分",
    "revoked": "撤销原决定",
}

# a decision's state in the ledger (rule 24)
DECISION_STATES = {"effective": "有效", "amended": "已变更", "revoked": "已撤销"}

REVIEW_DECISIONS = {"approve": "同意", "reject": "不同意"}

# rule 7: the national behaviour catalogue, as the national guidance words it
BEHAVIOURS = {
    "B1-01": "所在机构受到协议处理（暂停拨付、支付违约金等），本人负有责任",
    "B1-02": "约谈、限期整改、拒付或追回累计达3次",
    "B1-03": "公立医疗机构人员无正当理由使用高价非中选集采产品",
    "B1-99": "其他情节较轻的违规行为",
    "B2-01": "所在机构依《医疗保障基金使用监督管理条例》第三十八条、第三十九条受到行政处罚，本人负有责任",
    "B2-02": "超出登记的执业地点、类别、范围执业，受到处罚但未吊销执业证书",
    "B2-99": "其他情节较重的违规行为",
    "B3-01": "以未登记备案或被暂停、终止医保支付资格人员的名义结算医保费用",
    "B3-02": "同一年度内因同一违规行为被记分后再次发生",
    "B3-99": "其他情节严重的违规行为",
    "B4-01": "所在机构依《条例》第四十条（欺诈骗保）受到行政处罚，本人负有责任",
    "B4-02": "登记备案被注销或执业资格证书被吊销",
    "B4-99": "其他情节特别严重的违规行为（如欺诈骗保）",
}

# who recorded something, as access.actor_label names actors outside the reader's scope
ACTORS = {
    "rules": "按规则自动生成",
    "agency": "医保经办机构",
    "institution": "所在机构",
    "another institution": "其他机构",
    "the practitioner": "本人",
}


def behaviour(code: str) -> str:
    return BEHAVIOURS.get(code, code)


def label(table: dict[str, str], code: str | None) -> str:
    """The Chinese word for a code; an unknown code is shown as it is rather than hidden."""
    if code is None:
        return ""
    return table.get(code, code)


def citation(rule: str | None) -> str:
    """The rule as the API cites it, e.g. `docs/rules.md rule 21`."""
    return rule or ""


# the reasons rules/standing.py and rules/repair.py give, with the rule they cite
_REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), text)
    for pattern, text in (
        (r"rule 20: unknown repair activity$", "没有这种修复活动"),
        (
            r"rule 21: a year that holds a single-event 12 cannot be repaired$",
            "本年度有一次性记满12分的记录，不能修复",
        ),
        (r"rule 20: at most (\d+) points a year$", "每年最多修复 {0} 分，本年度已达上限"),
        (
            r"rule 26: at most (\d+) points a year from these activities$",
            "此类活动每年最多修复 {0} 分，已达上限",
        ),
        (
            r"rule 21: only points already recorded this year, never below zero$",
            "只能修复本年度已记录的分值，修复后不低于零分",
        ),
        (
            r"rule 21: every point recorded in (\d{4}) has already been repaired$",
            "{0} 年记录的分值已全部修复",
        ),
        (r"rule 21: there are no points recorded in (\d{4}) to repair$", "{0} 年没有可修复的记分"),
        (r"rule 20: this activity credits nothing$", "此项活动不抵减分值"),
    )
)
_RULE = re.compile(r"^(docs/rules\.md rules? [\d, and]+)")


def rule_reason(reason: str) -> tuple[str, str]:
    """(Chinese reason, citation) for a reason the rules gave as `docs/rules.md rule N: …`."""
    match = _RULE.match(reason)
    rule = match.group(1).strip() if match else ""
    for pattern, text in _REASONS:
        found = pattern.search(reason)
        if found:
            return text.format(*found.groups()), rule
    return "规则不允许此项申请", rule


def shortened_term(kind: str | None, months: int) -> str:
    if not kind or months <= 0:
        return ""
    term = "暂停期" if kind == "suspension" else "禁止再次登记备案期"
    return f"{term}缩短 {months} 个月"


# -- errors -----------------------------------------------------------------------------------------

# what a RuleViolation means, by the field it names (the detail is the API's, in English)
_FIELD_MESSAGES = {
    ("docs/rules.md rule 19", "completed_on"): "完成日期不能晚于今天",
    ("docs/rules.md rule 19", "institution_code"): "只能向曾登记备案的机构申请，由该机构先行审核",
    ("docs/rules.md rule 20", "activity"): "所在地区的规则中没有这种修复活动",
    ("docs/rules.md rule 13", "completed_on"): "完成日期不能晚于今天，也不能早于触发日期",
    ("docs/rules.md rule 23", "points"): "变更记分须给出新的分值，且不同于原分值；其他结果不填分值",
    ("docs/rules.md rule 8", "points"): "分值超出该行为允许的范围",
    ("docs/rules.md rule 8", "adjustment_reason"): "从轻或从重须说明理由；未调整时不填理由",
    ("docs/rules.md rule 6", "decided_on"): "决定日期不能晚于今天",
    ("docs/rules.md rule 6", "occurred_on"): "行为发生日期不能晚于决定日期",
    ("docs/rules.md rules 4 and 6", "occurred_on"): "行为发生时该人员未在该机构登记备案",
    ("docs/rules.md rule 7", "behaviour_code"): "行为代码不在全国目录中",
    ("docs/rules.md rule 7", "responsibility"): "责任程度只能是一般、重要或主要",
    ("docs/api.md Violations", "practitioner_code"): "没有此人员编码",
    ("docs/api.md Violations", "institution_code"): "没有此机构编码",
}


def error_message(error: PointsServiceError) -> tuple[str, str]:
    """(Chinese message, citation) for a refusal of the services, as the API would refuse it."""
    rule = str(error.extra.get("rule") or "")
    if isinstance(error, RuleViolation):
        if rule.startswith("docs/rules.md rule 23") and error.extra.get("deadline"):
            return f"申诉期限已过：应在 {error.extra['deadline']} 前（含当日）提出", rule
        if error.detail.startswith("docs/rules.md"):
            return rule_reason(error.detail)[0], rule
        field = next(iter(error.errors or {}), "")
        return _FIELD_MESSAGES.get((rule, field), "规则不允许此项操作"), rule
    if isinstance(error, (StaleVersion, PreconditionFailed)):
        return "该记录已被他人处理或更新，您看到的不是最新版本。请刷新页面后重新操作。", rule
    if isinstance(error, WorkflowConflict):
        state = error.extra.get("current_status") or error.extra.get("current_state")
        if state in REPAIR_STATUSES:
            return f"该申请当前状态为“{REPAIR_STATUSES[state]}”，不能再作此项审核。", rule
        if state in APPEAL_STATUSES:
            return f"该申诉已复核：{APPEAL_STATUSES[state]}。", rule
        if state in MEASURE_STATES:
            return f"该措施当前状态为“{MEASURE_STATES[state]}”，不能再标记完成。", rule
        return "当前状态下不能进行此项操作（该决定可能已被撤销）。", rule
    if isinstance(error, Conflict):
        if "appealed" in error.detail:
            return "该处理决定已提出过申诉；每项决定只能申诉一次。", rule
        if "case" in error.detail:
            return "此案件编号已记录过不同内容。", rule
        return "与已有记录冲突。", rule
    if isinstance(error, NotFound):
        return "没有找到此记录，或您无权查看。", rule
    if isinstance(error, Forbidden):
        return "您的角色无权进行此项操作。", rule
    if isinstance(error, NotAuthenticated):
        return "密钥无效、已吊销或已过期。", rule
    return "请求未被接受。", rule
