"""Signing in with a personal key, signing out, the home page of each role, and the stylesheet."""

from __future__ import annotations

from pathlib import Path

from flask import current_app, redirect, request, send_from_directory, session, url_for
from flask.typing import ResponseReturnValue

from ..api.security import KeyGuessing
from ..clock import utc_now
from ..services.access import Principal
from ..services.errors import NotAuthenticated
from . import data
from .base import (
    bp,
    current_principal,
    key_digest,
    log,
    render,
    runtime,
    safe_next,
    settings,
    signed_in,
    unit,
)
from .base import sign_out as end_session
from .forms import SignInForm

STATIC = str(Path(__file__).with_name("static"))
# the stylesheet changes only with a release of the service
ASSET_MAX_AGE = 3600

HOMES = {
    "practitioner": "console.practitioner_home",
    "hr_system": "console.hospital_home",
    "inspector": "console.inspector_home",
    "reviewer": "console.reviewer_home",
    "admin": "console.admin_home",
}


def _guessing() -> KeyGuessing | None:
    """The API's limit on refused keys per address, shared with the sign-in form: a key guessed
    here costs the same budget as one guessed against the API (api/security.py)."""
    limiter = current_app.extensions.get("points_service.limiter")
    budget = settings().auth_failure_limit
    if limiter is None or not budget:
        return None
    guessing = current_app.extensions.get("points_service.console.guessing")
    if guessing is None:
        guessing = current_app.extensions["points_service.console.guessing"] = KeyGuessing(limiter, budget)
    return guessing


@bp.get("/static/<path:filename>")
def static(filename: str) -> ResponseReturnValue:
    return send_from_directory(STATIC, filename, max_age=ASSET_MAX_AGE)


@bp.get("/")
@signed_in()
def home(principal: Principal) -> ResponseReturnValue:
    return redirect(url_for(HOMES[principal.role]), code=303)


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> ResponseReturnValue:
    form = SignInForm()
    target = request.args.get("next")
    if request.method == "GET" or not form.validate():
        return render("console/sign_in.html", 200 if request.method == "GET" else 422, form=form, next=target)
    secret = form.key.data.strip()
    digest = key_digest(secret)
    guessing = _guessing()
    limited = guessing.refusal(digest) if guessing is not None else None
    if limited is not None:
        wait = limited.headers["Retry-After"]
        log.warning("console sign-in refused: too many refused keys from this address")
        return render(
            "console/sign_in.html",
            429,
            form=form,
            next=target,
            error=f"此地址尝试的无效密钥过多，请 {wait} 秒后再试。",
        ), {"Retry-After": wait}
    now = utc_now()
    try:
        with unit(write=False) as db:
            principal = data.sign_in(db, secret, now=now)
    except NotAuthenticated:
        if guessing is not None:
            guessing.refused(digest)
        log.info("console sign-in refused: key not accepted")
        return render("console/sign_in.html", 403, form=form, next=target, error="密钥无效、已吊销或已过期。")
    if guessing is not None:
        guessing.accepted(digest)
    # a fresh session (and CSRF token) for the signed-in person: nothing of the one before carries over
    session.clear()
    session.permanent = True
    session["key_id"] = principal.key_id
    session["seen"] = int(now.timestamp())
    with unit(write=True) as db:
        data.touch_key(db, principal, now=now, secret=secret)
    log.info("console sign-in", key_id=principal.key_id, role=principal.role)
    return redirect(safe_next(target) or url_for(HOMES[principal.role]), code=303)


@bp.post("/sign-out")
def sign_out() -> ResponseReturnValue:
    key_id = session.get("key_id")
    end_session("您已退出。")
    if key_id is not None:
        log.info("console sign-out", key_id=key_id)
    return redirect(url_for("console.sign_in"), code=303)


@bp.context_processor
def _context() -> dict:
    principal = current_principal()
    return {
        "principal": principal,
        "role_label": data.role_label(principal) if principal else "",
        "idle_minutes": runtime().settings.console_idle_minutes,
    }
