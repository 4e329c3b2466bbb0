"""The interactive API reference at /docs: Swagger UI, served entirely by this service.

Deployments often sit on closed networks, so the page loads nothing from another host: Swagger
UI's files come from the `swagger-ui-bundle-v2` package (the unmodified swagger-ui-dist release),
and the few lines that start it are a served file, not an inline script. The page's
Content-Security-Policy therefore allows scripts and styles from this service only; every other
response keeps the strict policy of api/security.py.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, render_template, send_from_directory
from swagger_ui_bundle import swagger_ui_path

assets = Blueprint("docs", __name__, url_prefix="/docs", template_folder="templates")

SWAGGER_UI = str(swagger_ui_path)
STATIC = str(Path(__file__).with_name("static"))
# what the page uses; the rest of the distribution (its demo index.html points at a public
# petstore) is not served
SWAGGER_UI_FILES = frozenset(
    {"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png"}
)
# versioned with the package and unchanging between releases of this service
ASSET_MAX_AGE = 3600

PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def page(*, title: str, spec_url: str) -> Response:
    """The reference page; Api renders it for flask-smorest's OPENAPI_SWAGGER_UI_PATH."""
    response = Response(render_template("points_service/docs.html", title=title, spec_url=spec_url))
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response


@assets.get("/swagger-ui/<filename>")
def swagger_ui(filename: str) -> Response:
    if filename not in SWAGGER_UI_FILES:
        abort(404)
    return send_from_directory(SWAGGER_UI, filename, max_age=ASSET_MAX_AGE)


@assets.get("/start.js")
def start() -> Response:
    return send_from_directory(STATIC, "docs.js", max_age=ASSET_MAX_AGE)
