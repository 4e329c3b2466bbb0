"""The console's plumbing: its blueprint, the signed session cookie, CSRF, sign-in checks, one
transaction per use case, and its own security headers.

A session holds the key's id and when it was last used, never the key: every request reads the
key again, so a revoked or expired key's session ends at its next request, as the key would at
the API. The cookie is signed (itsdangerous, Flask's session), HttpOnly, SameSite=Strict, Secure
when the request came over HTTPS, limited to /console, and expires after
POINTS_CONSOLE_IDLE_MINUTES without a request.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from ..api.base import Runtime, request_id  # noqa: F401  (the views take it from here)
from ..clock import utc_now
from ..persistence.engine import transaction
from ..services.access import Principal
from ..services.errors import NotAuthenticated, PointsServiceError
from ..services.keys import LAST_USED_RESOLUTION
from ..settings import Settings
from . import data, labels
from .forms import ReviewForm

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder=None,
)
csrf = CSRFProtect()
log = structlog.get_logger("points_service.console")

PREFIX = "/console"
COOKIE_NAME = "points_console"
# the console's pages load their stylesheet and nothing else; forms post to the console itself
PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
# Flask-WTF checks on HTTPS that a form came from this host by its Referer; the API's
# `no-referrer` would refuse every form, so console pages send the referrer to this origin only
REFERRER_POLICY = "same-origin"


def session_secret(settings: Settings) -> bytes:
    """The key that signs session cookies: POINTS_CONSOLE_SECRET, or one derived from the index key.

    Deriving it (HKDF, its own label) gives every instance of a deployment the same key without a
    new secret to distribute, and a key of its own: the index key is never used to sign anything.
    """
    if settings.console_secret:
        return settings.console_secret.encode("utf-8")
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"points-service console session"
    ).derive(base64.b64decode(settings.index_key))


class ConsoleSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie session for /console only; the API never reads or sets a cookie."""

    def open_session(self, app: Flask, request: Any) -> Any:
        if not request.path.startswith(PREFIX):
            return self.null_session_class()
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        # behind a TLS-terminating proxy this holds when gunicorn trusts its X-Forwarded-Proto
        return request.is_secure


def configure(app: Flask) -> None:
    """The app's session, cookie and CSRF settings for the console (console.init_console)."""
    settings: Settings = app.extensions["points_service"].settings
    app.secret_key = session_secret(settings)
    app.session_interface = ConsoleSessions()
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_PATH=PREFIX,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(minutes=settings.console_idle_minutes),
        SESSION_REFRESH_EACH_REQUEST=True,
        # the API's JSON posts carry a bearer key and no cookie: CSRF is checked on console forms only
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_FIELD_NAME="csrf_token",
        # a form is valid as long as the session it was made in
        WTF_CSRF_TIME_LIMIT=None,
        # WTForms' own zh translations for its messages (Flask-Babel is not used)
        WTF_I18N_ENABLED=False,
    )
    csrf.init_app(app)


# -- every console request ------------------------------------------------------------------------


def runtime() -> Runtime:
    return current_app.extensions["points_service"]


def settings() -> Settings:
    return runtime().settings


@contextmanager
def unit(*, write: bool) -> Iterator[Session]:
    """One use case, one transaction, committed here at the edge (as the API's views do)."""
    rt = runtime()
    with transaction(rt.sessions if write else rt.primary_reads, write=write) as db:
        yield db


@bp.before_request
def _protect_forms() -> None:
    if request.method == "POST":
        csrf.protect()


@bp.after_request
def _headers(response: Response) -> ResponseReturnValue:
    # set before the app's own hook, which only fills in what is missing
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    response.headers["Referrer-Policy"] = REFERRER_POLICY
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("Content-Language", "zh-CN")
    return response


def idle_limit() -> dt.timedelta:
    return dt.timedelta(minutes=settings().console_idle_minutes)


def current_principal() -> Principal | None:
    return g.get("console_principal")


def sign_out(message: str | None = None) -> None:
    session.clear()
    if message:
        flash(message, "notice")


def done(message: str) -> None:
    """Tell the person what their form did, on the page they are sent to next."""
    flash(message, "done")


def safe_next(target: str | None) -> str | None:
    """Only a page of the console itself: never an address on another host."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def _to_sign_in() -> ResponseReturnValue:
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("console.sign_in", next=safe_next(target)), code=303)


def signed_in(*roles: str) -> Callable:
    """The page needs a signed-in key of one of these roles: the key is read again (a revoked or
    expired key ends the session), the idle limit is checked, and a wrong role is a 403 page."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key_id, seen = session.get("key_id"), session.get("seen")
            if key_id is None or seen is None:
                return _to_sign_in()
            now = utc_now()
            if now - dt.datetime.fromtimestamp(seen, dt.UTC) > idle_limit():
                sign_out("长时间未操作，已自动退出。请重新登录。")
                return _to_sign_in()
            try:
                with unit(write=False) as db:
                    principal = data.principal_for(db, key_id, now=now)
            except NotAuthenticated:
                log.info("console session ended: key refused", key_id=key_id)
                sign_out("您的密钥已被吊销或已过期，请联系管理员。")
                return _to_sign_in()
            session["seen"] = int(now.timestamp())
            # the request log names the key, as it does for the API
            g.principal = g.console_principal = principal
            if principal.last_used_at is None or now - principal.last_used_at >= LAST_USED_RESOLUTION:
                with unit(write=True) as db:
                    data.touch_key(db, principal, now=now)
            if roles and principal.role not in roles:
                return error_page(403, "您的角色无权访问此页面。")
            return view(principal, *args, **kwargs)

        return wrapper

    return decorator


# -- answers --------------------------------------------------------------------------------------


def render(template: str, code: int = 200, **context: Any) -> Response:
    response = current_app.make_response(render_template(template, **context))
    response.status_code = code
    return response


def submit(
    action: Callable[[Session], str],
    *,
    refused: Callable[[int, str, str], Response],
    then: str,
) -> ResponseReturnValue:
    """A form's write: `action` runs in one unit of work and returns what to tell the person, who is
    sent on to `then` (303); a refusal of the rules comes back as `refused(status, message, rule)`,
    the form's page again with the rule cited."""
    try:
        with unit(write=True) as db:
            message = action(db)
    except PointsServiceError as error:
        text, rule = labels.error_message(error)
        return refused(error.status, text, rule)
    done(message)
    return redirect(url_for(then), code=303)


def review_repair(
    principal: Principal,
    repair_id: int,
    *,
    stage: str,
    invalid: str,
    home: Callable[..., Response],
    then: str,
) -> ResponseReturnValue:
    """A review of a repair application from a queue, by the institution or the agency (`stage`);
    `invalid` says what the form lacks, `home` renders the queue again with a message."""
    form = ReviewForm()
    if not form.validate():
        return home(principal, 422, error=f"修复申请 #{repair_id}：{invalid}")
    return submit(
        lambda db: data.review_repair(
            db,
            principal,
            repair_id,
            decision=form.decision.data,
            comment=form.comment.data,
            version=form.version.data,
            stage=stage,
            settings=settings(),
            now=utc_now(),
            request_id=request_id(),
        ),
        refused=lambda status, text, rule: home(
            principal, status, error=f"修复申请 #{repair_id}：{text}", rule=rule
        ),
        then=then,
    )


def error_page(
    status: int, message: str, *, rule: str = "", headers: dict[str, str] | None = None
) -> Response:
    response = render("console/error.html", status, status=status, message=message, rule=rule)
    response.headers.update(headers or {})
    return response


@bp.errorhandler(PointsServiceError)
def _refused(error: PointsServiceError) -> ResponseReturnValue:
    message, rule = labels.error_message(error)
    return error_page(error.status, message, rule=rule)


@bp.errorhandler(CSRFError)
def _csrf(error: CSRFError) -> ResponseReturnValue:
    log.info("console form refused: CSRF", reason=error.description)
    return error_page(400, "表单已失效或不是从本站提交的，请返回上一页刷新后重新提交。")


@bp.errorhandler(HTTPException)
def _http(error: HTTPException) -> ResponseReturnValue:
    messages = {
        404: "没有这个页面。",
        405: "不支持这种请求方式。",
        413: "提交的内容过大。",
    }
    return error_page(error.code or 500, messages.get(error.code or 500, error.name))


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> ResponseReturnValue:
    # as the API answers them (api/errors.py): a lost database is 503, anything else a bug
    if isinstance(error, DBAPIError) and (
        isinstance(error, OperationalError) or error.connection_invalidated
    ):
        log.error("database unavailable", error=error.orig.__class__.__name__)
        return error_page(
            503, "数据库暂时无法访问，没有写入任何内容。请稍后重试。", headers={"Retry-After": "5"}
        )
    log.exception("console error")
    return error_page(500, "系统出错，没有写入任何内容。请稍后重试。")


def key_digest(secret: str) -> str:
    """The digest the API's refused-key limit counts keys by (api.security.bearer_digest)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:32]
