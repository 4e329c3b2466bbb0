"""Console fixtures: people and their keys built through the API, and a client that signs in with
a key the way a person does (the form, its CSRF token, the session cookie)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import pytest
from factories import make_key

from points_service.clock import local_today

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1) or match.group(2)


class Console:
    """A person at the console: signs in with a key and posts forms with the page's CSRF token."""

    def __init__(self, client):
        self.client = client
        self.token: str | None = None

    def sign_in(self, key: str):
        page = self.client.get("/console/sign-in")
        assert page.status_code == 200
        response = self.client.post(
            "/console/sign-in", data={"key": key, "csrf_token": csrf_of(page.get_data(as_text=True))}
        )
        assert response.status_code == 303, response.get_data(as_text=True)
        self.token = None
        return response

    def get(self, path: str, **kwargs):
        response = self.client.get(path, **kwargs)
        html = response.get_data(as_text=True)
        if CSRF.search(html):
            self.token = csrf_of(html)
        return response

    def post(self, path: str, data: dict, *, token: bool = True):
        if token and self.token is None:
            # any page of the session carries its token; the sign-in form is the lightest
            self.get("/console/sign-in")
        body = {**data, **({"csrf_token": self.token} if token else {})}
        return self.client.post(path, data=body)


def text(response) -> str:
    return response.get_data(as_text=True)


def words(response) -> str:
    """What the page says, as a person reads it: its text without tags, spaces collapsed."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", text(response))))


PREVIEW = "/console/inspector/decisions/preview"
HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


def preview_form(response) -> dict[str, str]:
    """The fields the preview's confirming form posts (its hidden inputs, as a browser sends them)."""
    page = text(response)
    assert 'action="/console/inspector/decisions"' in page
    return {name: html.unescape(value) for name, value in HIDDEN.findall(page.split('id="preview"')[1])}


def confirm(console: Console, body: dict):
    """An inspector previews a decision, then confirms the preview they were shown."""
    preview = console.post(PREVIEW, body)
    assert preview.status_code == 200, text(preview)
    return console.post("/console/inspector/decisions", preview_form(preview))


@dataclass
class Case:
    person: str
    hospital: str
    practitioner_key: str
    hr_key: str
    violation_id: int


@pytest.fixture
def case(session, admin, inspector) -> Case:
    """A person with 4 points today (B2-01, general) at a hospital, with their key and its HR key."""
    person, hospital = admin.person()
    violation = inspector.violation(
        person,
        hospital,
        behaviour_code="B2-01",
        responsibility="general",
        decided_on=local_today().isoformat(),
    )
    return Case(
        person=person,
        hospital=hospital,
        practitioner_key=make_key(session, "practitioner", practitioner_code=person),
        hr_key=make_key(session, "hr_system", institution_code=hospital),
        violation_id=violation["id"],
    )


@pytest.fixture
def console(client) -> Console:
    return Console(client)


@pytest.fixture
def new_console(app):
    """Another person's browser: a client of its own, with its own cookies."""
    return lambda: Console(app.test_client())
