"""Every console page: who may open it (the API's roles), what it loads (only the service's own
stylesheet, under a policy of its own), its language, and that it is no part of the API contract."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from conftest import Console, text
from factories import auth, make_key

from points_service.cli.openapi import spec_dict
from points_service.console.base import PAGE_POLICY

STRICT_POLICY = "default-src 'none'; frame-ancestors 'none'"

# each page, and the roles that may open it
PAGES = {
    "/console/me": {"practitioner"},
    "/console/me/repairs/new": {"practitioner"},
    "/console/hospital": {"hr_system"},
    "/console/hospital/roster": {"hr_system"},
    "/console/inspector": {"inspector"},
    "/console/reviewer": {"reviewer", "admin"},
    "/console/admin": {"admin"},
    "/console/admin/keys": {"admin"},
    "/console/statistics": {"reviewer", "admin", "hr_system"},
    "/console/notices": {"practitioner", "hr_system", "inspector", "reviewer", "admin"},
}
ROLES = ("practitioner", "hr_system", "inspector", "reviewer", "admin")


@pytest.fixture
def consoles(app, case, session) -> dict[str, Console]:
    keys = {
        "practitioner": case.practitioner_key,
        "hr_system": case.hr_key,
        "inspector": make_key(session, "inspector"),
        "reviewer": make_key(session, "reviewer"),
        "admin": make_key(session, "admin"),
    }
    out = {}
    for role, key in keys.items():
        out[role] = Console(app.test_client())
        out[role].sign_in(key)
    return out


class Loads(HTMLParser):
    """Every URL the page makes a browser load, every form's target, and any inline code."""

    def __init__(self):
        super().__init__()
        self.loads: list[str] = []
        self.forms: list[str] = []
        self.inline = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" or "style" in attrs or any(name.startswith("on") for name in attrs):
            self.inline += 1
        if tag in ("link", "img", "iframe", "source", "script") and (attrs.get("href") or attrs.get("src")):
            self.loads.append(attrs.get("href") or attrs.get("src"))
        if tag == "form":
            self.forms.append(attrs["action"])


def test_every_page_opens_for_its_roles_and_is_refused_to_the_others(consoles):
    for path, roles in PAGES.items():
        for role in ROLES:
            response = consoles[role].get(path)
            expected = 200 if role in roles else 403
            assert response.status_code == expected, (path, role)
            if expected == 403:
                assert "您的角色无权访问此页面" in text(response)


def test_without_a_session_every_page_sends_to_sign_in(client):
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 303 and response.headers["Location"].startswith("/console/sign-in")


def test_every_page_loads_only_its_own_stylesheet_and_icon_from_this_service_and_posts_only_here(
    consoles, client
):
    pages = [(role, path) for path, roles in PAGES.items() for role in roles]
    for role, path in [*pages, (None, "/console/sign-in")]:
        response = (consoles[role] if role else client).get(path)
        assert response.headers["Content-Security-Policy"] == PAGE_POLICY, path
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["Cache-Control"] == "no-store"
        html = text(response)
        assert html.startswith("<!doctype html>") and '<html lang="zh-CN">' in html
        assert 'name="viewport"' in html  # laid out for a phone's width
        parser = Loads()
        parser.feed(html)
        assert parser.inline == 0, path  # the policy allows no inline script or style
        assert parser.loads == ["/console/static/favicon.svg", "/console/static/console.css"], path
        for target in parser.forms:
            assert urlsplit(target).netloc == "" and target.startswith("/console/"), (path, target)
    sheet = client.get("/console/static/console.css")
    assert sheet.status_code == 200 and sheet.mimetype == "text/css"
    assert "@media" in sheet.get_data(as_text=True)
    sheet.close()
    icon = client.get("/console/static/favicon.svg")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    icon.close()
    assert client.get("/console/static/../base.py").status_code == 404


def test_the_page_policy_allows_the_stylesheet_and_forms_of_this_service_only():
    directives = dict(d.strip().split(" ", 1) for d in PAGE_POLICY.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["style-src"] == "'self'" and directives["form-action"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "script-src" not in directives and "unsafe" not in PAGE_POLICY


def test_the_api_keeps_its_strict_policy_beside_the_console(client, admin_key):
    for response in (client.get("/v1/policy", headers=auth(admin_key)), client.get("/health/live")):
        assert response.headers["Content-Security-Policy"] == STRICT_POLICY
        assert response.headers["Referrer-Policy"] == "no-referrer"


def test_the_console_is_no_part_of_the_api_contract():
    assert not [path for path in spec_dict()["paths"] if path.startswith("/console")]
