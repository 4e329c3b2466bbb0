"""The practitioner's own pages: standing and file, a repair application with the rules' answer
before it is submitted, and an appeal inside its window."""

from __future__ import annotations

from flask import Response
from flask.typing import ResponseReturnValue

from ..clock import utc_now
from ..services.access import Principal
from ..services.errors import PointsServiceError
from . import data, labels
from .base import bp, render, request_id, settings, signed_in, submit, unit
from .forms import AppealForm, RepairForm, choices


@bp.get("/me")
@signed_in("practitioner")
def practitioner_home(principal: Principal) -> ResponseReturnValue:
    with unit(write=False) as db:
        page = data.practitioner_home(db, principal, settings=settings(), now=utc_now())
    return render("console/practitioner/home.html", page=page)


def _repair_form(principal: Principal) -> RepairForm:
    form = RepairForm()
    with unit(write=False) as db:
        form.institution_code.choices = choices(data.repair_institutions(db, principal, now=utc_now()))
    form.activity.choices = choices(data.activity_choices())
    return form


@bp.get("/me/repairs/new")
@signed_in("practitioner")
def repair_new(principal: Principal) -> ResponseReturnValue:
    return render("console/practitioner/repair.html", form=_repair_form(principal))


@bp.post("/me/repairs/check")
@signed_in("practitioner")
def repair_check(principal: Principal) -> ResponseReturnValue:
    """The "check" step: the rules' answer to the application, nothing written."""
    form = _repair_form(principal)
    if not form.validate():
        return render("console/practitioner/repair.html", 422, form=form)
    try:
        # the preview runs a submission's checks, which lock the person, as POST /v1/repairs/preview does
        with unit(write=True) as db:
            answer = data.check_repair(db, principal, form.data, settings=settings(), now=utc_now())
    except PointsServiceError as error:
        message, rule = labels.error_message(error)
        return render("console/practitioner/repair.html", error.status, form=form, error=message, rule=rule)
    return render("console/practitioner/repair.html", form=form, answer=answer)


def _submitted(repair_id: int) -> str:
    return f"修复申请 #{repair_id} 已提交，等待所在机构审核。"


@bp.post("/me/repairs")
@signed_in("practitioner")
def repair_submit(principal: Principal) -> ResponseReturnValue:
    form = _repair_form(principal)
    if not form.validate():
        return render("console/practitioner/repair.html", 422, form=form)
    return submit(
        lambda db: _submitted(
            data.submit_repair(
                db, principal, form.data, settings=settings(), now=utc_now(), request_id=request_id()
            )
        ),
        refused=lambda status, text, rule: render(
            "console/practitioner/repair.html", status, form=form, error=text, rule=rule
        ),
        then="console.practitioner_home",
    )


def _appeal_page(
    principal: Principal, violation_id: int, form: AppealForm, status: int = 200, **extra
) -> Response:
    with unit(write=False) as db:
        page = data.appeal_form(db, principal, violation_id, settings=settings(), now=utc_now())
    return render("console/practitioner/appeal.html", status, page=page, form=form, **extra)


@bp.get("/me/decisions/<int:violation_id>/appeal")
@signed_in("practitioner")
def appeal_new(principal: Principal, violation_id: int) -> ResponseReturnValue:
    return _appeal_page(principal, violation_id, AppealForm())


@bp.post("/me/decisions/<int:violation_id>/appeal")
@signed_in("practitioner")
def appeal_file(principal: Principal, violation_id: int) -> ResponseReturnValue:
    form = AppealForm()
    if not form.validate():
        return _appeal_page(principal, violation_id, form, 422)
    return submit(
        lambda db: data.file_appeal(
            db,
            principal,
            violation_id,
            form.reason.data,
            settings=settings(),
            now=utc_now(),
            request_id=request_id(),
        ),
        refused=lambda status, text, rule: _appeal_page(
            principal, violation_id, form, status, error=text, rule=rule
        ),
        then="console.practitioner_home",
    )
