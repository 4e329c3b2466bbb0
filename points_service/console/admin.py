"""The admin's pages: where its role may go in the console, and how people get their keys."""

from __future__ import annotations

from flask.typing import ResponseReturnValue

from ..services.access import Principal
from .base import bp, render, signed_in


@bp.get("/admin")
@signed_in("admin")
def admin_home(principal: Principal) -> ResponseReturnValue:
    return render("console/admin/home.html")


@bp.get("/admin/keys")
@signed_in("admin")
def admin_keys(principal: Principal) -> ResponseReturnValue:
    return render("console/admin/keys.html")
