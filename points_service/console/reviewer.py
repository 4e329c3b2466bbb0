"""The agency reviewer's pages: the appeal and repair queues with their dates, and the decisions
on them with a reason. An admin reads the same queues without the forms."""

from __future__ import annotations

from flask import Response
from flask.typing import ResponseReturnValue

from ..clock import utc_now
from ..services.access import Principal
from . import data
from .base import bp, render, request_id, review_repair, settings, signed_in, submit, unit
from .forms import AppealDecisionForm, ReviewForm


def _home(principal: Principal, status: int = 200, **extra) -> Response:
    with unit(write=False) as db:
        page = data.reviewer_home(db, principal, settings=settings(), now=utc_now())
    return render(
        "console/reviewer/home.html",
        status,
        page=page,
        form=ReviewForm(),
        may_decide=principal.role == "reviewer",
        **extra,
    )


@bp.get("/reviewer")
@signed_in("reviewer", "admin")
def reviewer_home(principal: Principal) -> ResponseReturnValue:
    return _home(principal)


@bp.post("/reviewer/repairs/<int:repair_id>/review")
@signed_in("reviewer")
def reviewer_repair(principal: Principal, repair_id: int) -> ResponseReturnValue:
    """The agency's review: only its approval takes effect, on today's date (rule 19)."""
    return review_repair(
        principal,
        repair_id,
        stage="agency",
        invalid="请选择批准或不批准，并检查审核意见。",
        home=_home,
        then="console.reviewer_home",
    )


def _appeal_page(principal: Principal, appeal_id: int, form, status: int = 200, **extra) -> Response:
    with unit(write=False) as db:
        appeal = data.appeal_for_review(db, principal, appeal_id, settings=settings(), now=utc_now())
    if form.version.data is None:
        form.version.data = appeal.version
    return render(
        "console/reviewer/appeal.html",
        status,
        appeal=appeal,
        form=form,
        may_decide=principal.role == "reviewer",
        **extra,
    )


@bp.get("/reviewer/appeals/<int:appeal_id>")
@signed_in("reviewer", "admin")
def reviewer_appeal(principal: Principal, appeal_id: int) -> ResponseReturnValue:
    return _appeal_page(principal, appeal_id, AppealDecisionForm())


@bp.post("/reviewer/appeals/<int:appeal_id>")
@signed_in("reviewer")
def reviewer_decide(principal: Principal, appeal_id: int) -> ResponseReturnValue:
    form = AppealDecisionForm()
    if not form.validate():
        return _appeal_page(principal, appeal_id, form, 422)
    return submit(
        lambda db: data.decide_appeal(
            db,
            principal,
            appeal_id,
            outcome=form.outcome.data,
            points=form.points.data,
            reason=form.reason.data,
            version=form.version.data,
            settings=settings(),
            now=utc_now(),
            request_id=request_id(),
        ),
        refused=lambda status, text, rule: _appeal_page(
            principal, appeal_id, form, status, error=text, rule=rule
        ),
        then="console.reviewer_home",
    )
