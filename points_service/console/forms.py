"""The console's forms (Flask-WTF): each carries its CSRF token in `csrf_token`, and each field
refuses what the API's schema refuses for the same value (rules.identifiers), with a message in
Chinese; the services then apply the rules."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import AnyOf, DataRequired, InputRequired, Length, NumberRange, Optional, Regexp
from wtforms.validators import ValidationError as FieldError

from ..rules.identifiers import EARLIEST_DATE, LATEST_DATE, identifier_problem, text_problem

REQUIRED = "必填"
CODE = Regexp(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", message="编码只能由字母、数字和 . _ - 组成")


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _problem(check: Callable[[str], str | None], message: str) -> Callable[[Any, Any], None]:
    def validate(_form: Any, field: Any) -> None:
        if field.data and check(field.data) is not None:
            raise FieldError(message)

    return validate


IDENTIFIER = _problem(identifier_problem, "只能包含可打印字符")
TEXT = _problem(text_problem, "含有无法保存的字符")


def _legal_date(_form: Any, field: Any) -> None:
    if field.data is not None and not EARLIEST_DATE <= field.data <= LATEST_DATE:
        raise FieldError(f"日期须在 {EARLIEST_DATE} 至 {LATEST_DATE} 之间")


class Form(FlaskForm):
    class Meta:
        # WTForms' own messages (an unreadable date, a choice not offered) in Chinese
        locales = ("zh",)


def choices(options: Iterable[Any]) -> list[SelectChoice]:
    """The options of a select, from the plain (value, label) choices console.data gives."""
    return [SelectChoice(o.value, o.label) for o in options]


def legal_date(label: str, **kwargs: Any) -> DateField:
    return DateField(
        label,
        format="%Y-%m-%d",
        validators=[InputRequired(REQUIRED), _legal_date],
        **kwargs,
    )


class SignInForm(Form):
    key = PasswordField("个人密钥", validators=[DataRequired("请输入管理员发给您的密钥"), Length(max=200)])


class RepairForm(Form):
    institution_code = SelectField("审核机构", validators=[InputRequired(REQUIRED)])
    activity = SelectField("修复活动", validators=[InputRequired(REQUIRED)])
    completed_on = legal_date("完成日期")
    evidence_ref = StringField(
        "凭证编号",
        filters=[_strip],
        validators=[DataRequired(REQUIRED), Length(max=500, message="最多 500 个字符"), IDENTIFIER],
        description="如培训证书编号、学习平台记录号",
    )


class AppealForm(Form):
    reason = TextAreaField(
        "申诉理由",
        validators=[DataRequired("请写明申诉理由"), Length(max=4000, message="最多 4000 个字"), TEXT],
    )


class ReviewForm(Form):
    """A review step: the version the reviewer saw travels with the form (optimistic locking)."""

    version = IntegerField(widget=HiddenField.widget, validators=[InputRequired(REQUIRED)])
    decision = StringField(validators=[AnyOf(["approve", "reject"], message="请选择同意或不同意")])
    comment = TextAreaField("审核意见", validators=[Length(max=2000, message="最多 2000 个字"), TEXT])


class CompleteTalkForm(Form):
    completed_on = legal_date("谈话日期")
    note = TextAreaField("记录", validators=[Length(max=4000, message="最多 4000 个字"), TEXT])


class AppealDecisionForm(Form):
    version = IntegerField(widget=HiddenField.widget, validators=[InputRequired(REQUIRED)])
    outcome = RadioField(
        "复核结果",
        choices=[
            SelectChoice("upheld", "维持原决定"),
            SelectChoice("amended", "变更记分"),
            SelectChoice("revoked", "撤销原决定"),
        ],
        validators=[InputRequired("请选择复核结果")],
    )
    points = IntegerField(
        "变更后的分值",
        validators=[Optional(), NumberRange(min=1, max=12, message="分值为 1 至 12 分")],
        description="仅在“变更记分”时填写",
    )
    reason = TextAreaField(
        "理由",
        validators=[DataRequired("请写明复核理由"), Length(max=4000, message="最多 4000 个字"), TEXT],
    )


class DecisionForm(Form):
    case_ref = StringField(
        "案件编号",
        filters=[_strip],
        validators=[DataRequired(REQUIRED), Length(max=100, message="最多 100 个字符"), IDENTIFIER],
    )
    practitioner_code = StringField(
        "人员编码（医保相关人员代码）", filters=[_strip], validators=[DataRequired(REQUIRED), CODE]
    )
    institution_code = StringField(
        "机构编码（案件发生的定点医药机构）", filters=[_strip], validators=[DataRequired(REQUIRED), CODE]
    )
    behaviour_code = SelectField("违规行为（全国目录）", validators=[InputRequired(REQUIRED)])
    responsibility = SelectField("责任程度", validators=[InputRequired(REQUIRED)])
    occurred_on = legal_date("行为发生日期")
    decided_on = legal_date("处理决定日期", description="决定所在年度即记分年度（docs/rules.md rule 6）")
    points = IntegerField(
        "分值（可不填）",
        validators=[Optional(), NumberRange(min=1, max=12, message="分值为 1 至 12 分")],
        description="不填则按行为和责任程度取默认分值；从轻、从重时必须填写",
    )
    adjustment = SelectField("从轻或从重", validators=[Optional()])
    adjustment_reason = TextAreaField(
        "调整理由", validators=[Length(max=2000, message="最多 2000 个字"), TEXT]
    )
    description = TextAreaField("情况说明", validators=[Length(max=4000, message="最多 4000 个字"), TEXT])


class ConfirmDecisionForm(DecisionForm):
    """The decision as previewed, posted to record it, with the digest of the preview it confirms
    (console.data.DecisionPreview): no digest, or another one, records nothing."""

    previewed = HiddenField()


class StatisticsForm(Form):
    """The filters of the statistics page, as GET /v1/statistics takes them (a query, no CSRF)."""

    class Meta:
        csrf = False

    year = IntegerField(
        "记分年度",
        validators=[Optional(), NumberRange(min=2000, max=2200, message="年度须在 2000 至 2200 之间")],
    )
    province = StringField(
        "省级区划代码（可不填）",
        filters=[_strip],
        validators=[Optional(), Regexp(r"^\d{2}$", message="两位数字，如 13（河北）、63（青海）")],
    )
    institution_code = StringField("机构编码（可不填）", filters=[_strip], validators=[Optional(), CODE])


def _register_position(_form: Any, field: Any) -> None:
    """`after`: where the register's next page starts (the day of publication as an ordinal, an id)."""
    match = re.fullmatch(r"(\d{1,7})\.(\d{1,18})", field.data or "")
    if field.data and (match is None or not 1 <= int(match.group(1)) <= dt.date.max.toordinal()):
        raise FieldError("页码无效")


class NoticesForm(Form):
    class Meta:
        csrf = False

    year = IntegerField(
        "公布年度",
        validators=[Optional(), NumberRange(min=2000, max=2200, message="年度须在 2000 至 2200 之间")],
    )
    after = StringField(validators=[Optional(), _register_position])
