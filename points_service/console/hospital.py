"""The hospital's pages (an hr_system key): its roster with each person's status today, the repair
applications waiting for its review, and its talks to hold."""

from __future__ import annotations

from flask import Response, redirect, request, url_for
from flask.typing import ResponseReturnValue

from ..clock import utc_now
from ..services.access import Principal
from ..services.errors import PointsServiceError
from . import data, labels
from .base import bp, done, render, request_id, settings, signed_in, unit
from .forms import CompleteTalkForm, ReviewForm


def _home(principal: Principal, status: int = 200, **extra) -> Response:
    with unit(write=False) as db:
        page = data.hospital_home(db, principal, now=utc_now())
    return render("console/hospital/home.html", status, page=page, form=ReviewForm(), **extra)


@bp.get("/hospital")
@signed_in("hr_system")
def hospital_home(principal: Principal) -> ResponseReturnValue:
    return _home(principal)


@bp.get("/hospital/roster")
@signed_in("hr_system")
def hospital_roster(principal: Principal) -> ResponseReturnValue:
    with unit(write=False) as db:
        page = data.roster(db, principal, after=request.args.get("after") or None, now=utc_now())
    return render("console/hospital/roster.html", page=page)


@bp.post("/hospital/repairs/<int:repair_id>/review")
@signed_in("hr_system")
def hospital_review(principal: Principal, repair_id: int) -> ResponseReturnValue:
    """The institution's review (the first step); a stale version is refused with a message."""
    form = ReviewForm()
    if not form.validate():
        return _home(principal, 422, error=f"修复申请 #{repair_id}：请选择同意或不同意，并检查审核意见。")
    try:
        with unit(write=True) as db:
            message = data.review_repair(
                db,
                principal,
                repair_id,
                decision=form.decision.data,
                comment=form.comment.data,
                version=form.version.data,
                stage="institution",
                settings=settings(),
                now=utc_now(),
                request_id=request_id(),
            )
    except PointsServiceError as error:
        text, rule = labels.error_message(error)
        return _home(principal, error.status, error=f"修复申请 #{repair_id}：{text}", rule=rule)
    done(message)
    return redirect(url_for("console.hospital_home"), code=303)


@bp.post("/hospital/talks/<int:measure_id>/complete")
@signed_in("hr_system")
def hospital_talk_done(principal: Principal, measure_id: int) -> ResponseReturnValue:
    form = CompleteTalkForm()
    if not form.validate():
        return _home(principal, 422, error=f"谈话 #{measure_id}：请填写谈话日期。")
    try:
        with unit(write=True) as db:
            message = data.complete_talk(
                db,
                principal,
                measure_id,
                completed_on=form.completed_on.data,
                note=form.note.data,
                now=utc_now(),
                request_id=request_id(),
            )
    except PointsServiceError as error:
        text, rule = labels.error_message(error)
        return _home(principal, error.status, error=f"谈话 #{measure_id}：{text}", rule=rule)
    done(message)
    return redirect(url_for("console.hospital_home"), code=303)
