"""The inspector's pages: the decision form, the preview of what the decision would record, and
the decisions this key posted.

Posting a decision has two steps, as the console's repair application has: the form posts to the
preview (violations.preview_violation, recording nothing), and the preview's own form posts the
same fields to record them. That second post carries the digest of the preview the inspector read,
and the route previews again in the transaction that would record: only while the answer is still
what was shown is the decision recorded; otherwise (another decision about the person came in
between, or no preview was read) nothing is written and the new preview is shown.
"""

from __future__ import annotations

import datetime as dt

from flask import Response, redirect, url_for
from flask.typing import ResponseReturnValue

from ..clock import utc_now
from ..services.access import Principal
from ..services.errors import PointsServiceError
from . import data, labels
from .base import bp, done, render, request_id, settings, signed_in, unit
from .forms import ConfirmDecisionForm, DecisionForm, choices

NOT_PREVIEWED = "请先预览：核对将记录的分值及其触发的结果后，再确认记录。"
CHANGED = (
    "预览之后情况已有变化（例如刚录入了该人员的其他决定），记录结果与您看到的不同，未作记录。"
    "请核对下面新的预览后再确认。"
)


def _form(cls: type[DecisionForm] = DecisionForm) -> DecisionForm:
    form = cls()
    form.behaviour_code.choices = choices(data.behaviour_choices(settings()))
    form.responsibility.choices = choices(data.responsibility_choices())
    form.adjustment.choices = choices(data.adjustment_choices())
    return form


def _hidden(form: DecisionForm) -> list[tuple[str, str]]:
    """The form's values as the preview's confirming form posts them again, unchanged."""
    out = []
    for name, value in form.data.items():
        if name in ("csrf_token", "previewed"):
            continue
        text = "" if value is None else value.isoformat() if isinstance(value, dt.date) else str(value)
        out.append((name, text))
    return out


def _page(principal: Principal, form: DecisionForm, status: int = 200, **extra) -> Response:
    with unit(write=False) as db:
        posted = data.decisions_posted(db, principal, settings=settings(), now=utc_now())
    preview = extra.get("preview")
    hidden = _hidden(form) if preview is not None else []
    return render("console/inspector/home.html", status, form=form, posted=posted, hidden=hidden, **extra)


def _refused(principal: Principal, form: DecisionForm, error: PointsServiceError) -> Response:
    text, rule = labels.error_message(error)
    return _page(principal, form, error.status, error=text, rule=rule)


@bp.get("/inspector")
@signed_in("inspector")
def inspector_home(principal: Principal) -> ResponseReturnValue:
    return _page(principal, _form())


@bp.post("/inspector/decisions/preview")
@signed_in("inspector")
def preview_decision(principal: Principal) -> ResponseReturnValue:
    """The first step: what the decision would record and trigger; nothing is written."""
    form = _form()
    if not form.validate():
        return _page(principal, form, 422)
    try:
        # the preview runs the real post (the person locked) in a savepoint it rolls back
        with unit(write=True) as db:
            preview = data.preview_decision(db, principal, form.data, settings=settings(), now=utc_now())
    except PointsServiceError as error:
        return _refused(principal, form, error)
    return _page(principal, form, preview=preview)


@bp.post("/inspector/decisions")
@signed_in("inspector")
def record_decision(principal: Principal) -> ResponseReturnValue:
    """The second step: record the decision as previewed, in one transaction with a fresh preview."""
    form = _form(ConfirmDecisionForm)
    if not form.validate():
        return _page(principal, form, 422)
    now = utc_now()
    message = None
    try:
        with unit(write=True) as db:
            preview = data.preview_decision(db, principal, form.data, settings=settings(), now=now)
            if preview.digest == form.data.get("previewed"):
                message = data.record_decision(
                    db, principal, form.data, settings=settings(), now=now, request_id=request_id()
                )
    except PointsServiceError as error:
        return _refused(principal, form, error)
    if message is None:
        notice = CHANGED if form.data.get("previewed") else NOT_PREVIEWED
        return _page(principal, form, 409, preview=preview, error=notice)
    done(message)
    return redirect(url_for("console.inspector_home"), code=303)
