"""The hospital's pages (an hr_system key): its roster with each person's status today, the repair
applications waiting for its review, and its talks to hold."""

from __future__ import annotations

from flask import Response, request
from flask.typing import ResponseReturnValue

from ..clock import utc_now
from ..services.access import Principal
from . import data
from .base import bp, render, request_id, review_repair, signed_in, submit, unit
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
    return review_repair(
        principal,
        repair_id,
        stage="institution",
        invalid="请选择同意或不同意，并检查审核意见。",
        home=_home,
        then="console.hospital_home",
    )


@bp.post("/hospital/talks/<int:measure_id>/complete")
@signed_in("hr_system")
def hospital_talk_done(principal: Principal, measure_id: int) -> ResponseReturnValue:
    form = CompleteTalkForm()
    if not form.validate():
        return _home(principal, 422, error=f"谈话 #{measure_id}：请填写谈话日期。")
    return submit(
        lambda db: data.complete_talk(
            db,
            principal,
            measure_id,
            completed_on=form.completed_on.data,
            note=form.note.data,
            now=utc_now(),
            request_id=request_id(),
        ),
        refused=lambda status, text, rule: _home(
            principal, status, error=f"谈话 #{measure_id}：{text}", rule=rule
        ),
        then="console.hospital_home",
    )
