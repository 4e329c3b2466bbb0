"""The agency's desk in the console: its statistics for a score year (the figures of
GET /v1/statistics, as a table and a chart), and the public notice register (GET /v1/notices).

Both are readable by the roles the API lets read them: statistics by the agency's reviewer and
admin and by a hospital (its own institution's figures), the register by every signed-in role.
"""

from __future__ import annotations

from flask import request
from flask.typing import ResponseReturnValue

from ..clock import utc_now
from ..services.access import Principal
from . import data
from .base import bp, render, settings, signed_in, unit
from .forms import NoticesForm, StatisticsForm


@bp.get("/statistics")
@signed_in("reviewer", "admin", "hr_system")
def statistics(principal: Principal) -> ResponseReturnValue:
    form = StatisticsForm(formdata=request.args)
    if not form.validate():
        return render(
            "console/agency/statistics.html", 422, form=form, page=None, national=principal.is_national
        )
    with unit(write=False) as db:
        # an HR system's figures are its own institution's; naming another, or a province, is 404
        # (statistics.resolve_scope), as at the API
        page = data.statistics_page(
            db,
            principal,
            year=form.year.data,
            province=form.province.data or None,
            institution_code=form.institution_code.data or None,
            settings=settings(),
            now=utc_now(),
        )
    if form.year.data is None:
        form.year.data = page.year
    return render("console/agency/statistics.html", form=form, page=page, national=principal.is_national)


@bp.get("/notices")
@signed_in()
def notices(principal: Principal) -> ResponseReturnValue:
    form = NoticesForm(formdata=request.args)
    if not form.validate():
        return render("console/agency/notices.html", 422, form=form, page=None)
    after = None
    if form.after.data:
        day, last_id = form.after.data.split(".")
        after = (int(day), int(last_id))
    with unit(write=False) as db:
        page = data.notices_page(db, principal, year=form.year.data, after=after, settings=settings())
    return render("console/agency/notices.html", form=form, page=page)
