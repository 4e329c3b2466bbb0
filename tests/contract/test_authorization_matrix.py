"""The authorisation matrix: every operation in the committed openapi.yaml × every role.

Each case builds its own small world inside the test's rolled-back transaction:

- institution A with person P registered, institution B with person Q registered;
- a decision of 3 points for P at A, decided today (it triggers an institution talk);
- an open appeal by P against it, a submitted repair application by P at A;
- a webhook subscription owned by A's HR system.

The roles: no key, admin, inspector, reviewer, A's HR system (`hr_own`), B's HR system
(`hr_other`), P (`self`) and Q (`other_person`). Path parameters name the world's objects; writes
send a minimal valid body, so the first permitted call succeeds. The expected status of every
(operation, role) pair is written out in EXPECTED, from docs/api.md's "who" columns and
docs/decisions.md: no key -> 401, a role that may not -> 403, an object outside the caller's
scope -> 404.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from factories import ID_NUMBERS, Api, code, make_key, new_id_number

from points_service.clock import local_today, utc_now
from points_service.services import webhooks
from points_service.services.keys import authenticate

SPEC = Path(__file__).resolve().parents[2] / "openapi.yaml"
PROBLEM = "application/problem+json"
METHODS = ("get", "post", "put", "patch", "delete")
ROLES = ("none", "admin", "inspector", "reviewer", "hr_own", "hr_other", "self", "other_person")
PUBLIC_HOOK_HOST = "hooks.example.com"


def _operations() -> list[tuple[str, str]]:
    spec = yaml.safe_load(SPEC.read_text("utf-8"))
    return [
        (method.upper(), path) for path, item in spec["paths"].items() for method in item if method in METHODS
    ]


OPERATIONS = _operations()


# (method, path) -> {role: status}, each row in the order of ROLES.
EXPECTED: dict[tuple[str, str], dict[str, int]] = {
    # registry -------------------------------------------------------------------------------------
    ("POST", "/v1/institutions"): {
        "none": 401, "admin": 201, "inspector": 403, "reviewer": 403,
        "hr_own": 403, "hr_other": 403, "self": 403, "other_person": 403,
    },
    # "any role with access": an HR system sees its own institution, a person the ones they are
    # (or were) registered at; any other institution is outside their scope (404)
    ("GET", "/v1/institutions/{code}"): {
        "none": 401, "admin": 200, "inspector": 200, "reviewer": 200,
        "hr_own": 200, "hr_other": 404, "self": 200, "other_person": 404,
    },
    # the registry of persons is the agency's: an HR system registers existing people only
    ("POST", "/v1/practitioners"): {
        "none": 401, "admin": 201, "inspector": 403, "reviewer": 403,
        "hr_own": 403, "hr_other": 403, "self": 403, "other_person": 403,
    },
    ("GET", "/v1/practitioners/{code}"): {
        "none": 401, "admin": 200, "inspector": 200, "reviewer": 200,
        "hr_own": 200, "hr_other": 404, "self": 200, "other_person": 404,
    },
    # the body re-posts P's open registration at A (an idempotent replay: 200); B's HR system may
    # not register anyone at A, a scope it may not act in (403, docs/api.md "for its own institution")
    ("POST", "/v1/practitioners/{code}/registrations"): {
        "none": 401, "admin": 200, "inspector": 403, "reviewer": 403,
        "hr_own": 200, "hr_other": 403, "self": 403, "other_person": 403,
    },
    ("POST", "/v1/practitioners/{code}/registrations/{institution_code}/end"): {
        "none": 401, "admin": 200, "inspector": 403, "reviewer": 403,
        "hr_own": 200, "hr_other": 403, "self": 403, "other_person": 403,
    },
    # violations -----------------------------------------------------------------------------------
    ("POST", "/v1/violations"): {
        "none": 401, "admin": 201, "inspector": 201, "reviewer": 403,
        "hr_own": 403, "hr_other": 403, "self": 403, "other_person": 403,
    },
    # what a decision would bring: the agency's desk (inspectors, reviewers, admin); records nothing
    ("POST", "/v1/violations/preview"): {
        "none": 401, "admin": 200, "inspector": 200, "reviewer": 200,
        "hr_own": 403, "hr_other": 403, "self": 403, "other_person": 403,
    },
    ("GET", "/v1/violations/{violation_id}"): {
        "none": 401, "admin": 200, "inspector": 200, "reviewer": 200,
        "hr_own": 200, "hr_other": 404, "self": 200, "other_person": 404,
    },
    # standing and eligibility: as for GET /v1/practitioners/{code}
    ("GET", "/v1/practitioners/{code}/standing"): {
        "none": 401, "admin": 200, "inspector": 200, "reviewer": 200,
        "hr_own": 200, "hr_other": 404, "self": 200, "other_person": 404,
    },
    ("GET", "/v1/practitioners/{code}/eligibility"): {
        "none": 401, "admin": 200, "inspector": 200, "reviewer": 200,
        "hr_own": 200, "hr_other": 404, "self": 200, "other_person": 404,
    },
    # a batch answers `unknown` for people outside an HR system's staff (decisions.md), so B's is 200;
    # docs/api.md names no practitioner here and the committed spec leaves them out (403)
    ("POST", "/v1/eligibility/batch"): {
        "none": 401, "admin": 200, "inspector": 200, "reviewer": 200,
        "hr_own": 200, "hr_other": 200, "self": 403, "other_person": 403,
    },
    # the roster: "hr_system of that institution, reviewer, admin"
    ("GET", "/v1/institutions/{code}/eligibility"): {
        "none": 401, "admin": 200, "inspector": 403, "reviewer": 200,
        "hr_own": 200, "hr_other": 404, "self": 403, "other_person": 403,
    },
    ("GET", "/v1/practitioners/{code}/history"): {
        "none": 401, "admin": 200, "inspector": 200, "reviewer": 200,
        "hr_own": 200, "hr_other": 404, "self": 200, "other_person": 404,
    },
    # repairs: reads "as for violations"; a list is filtered to the caller's scope, never refused
    ("GET", "/v1/repairs"): {
        "none": 401, "admin": 200, "inspector": 200, "reviewer": 200,
        "hr_own": 200, "hr_other": 200, "self": 200, "other_person": 200,
    },
    # "the person; hr_system on their behalf" (and admin, as the committed spec says); applying for
    # someone else, or at another institution, is a scope the caller may not act in (403)
    ("POST", "/v1/repairs"): {
        "none": 401, "admin": 201, "inspector": 403, "reviewer": 403,
        "hr_own": 201, "hr_other": 403, "self": 201, "other_person": 403,
    },
    # the answer before applying: who may apply, in the scope they may apply in; submits nothing
    ("POST", "/v1/repairs/preview"): {
        "none": 401, "admin": 200, "inspector": 403, "reviewer": 403,
        "hr_own": 200, "hr_other": 403, "self": 200, "other_person": 403,
    },
    ("GET", "/v1/repairs/{repair_id}"): {
        "none": 401, "admin": 200, "inspector": 200, "reviewer": 200,
        "hr_own": 200, "hr_other": 404, "self": 200, "other_person": 404,
    },
    # docs/api.md says "hr_system of that institution"; the committed spec adds admin (who may do anything)
    ("POST", "/v1/repairs/{repair_id}/institution-review"): {
        "none": 401, "admin": 200, "inspector": 403, "reviewer": 403,
        "hr_own": 200, "hr_other": 404, "self": 403, "other_person": 403,
    },
    # the world's application is institution-approved first, so the agency may decide it
    ("POST", "/v1/repairs/{repair_id}/agency-review"): {
        "none": 401, "admin": 403, "inspector": 403, "reviewer": 200,
        "hr_own": 403, "hr_other": 403, "self": 403, "other_person": 403,
    },
    # appeals: the world has no appeal yet for this one (one appeal per decision)
    ("POST", "/v1/violations/{violation_id}/appeals"): {
        "none": 401, "admin": 201, "inspector": 403, "reviewer": 403,
        "hr_own": 403, "hr_other": 403, "self": 201, "other_person": 404,
    },
    ("GET", "/v1/appeals/{appeal_id}"): {
        "none": 401, "admin": 200, "inspector": 200, "reviewer": 200,
        "hr_own": 200, "hr_other": 404, "self": 200, "other_person": 404,
    },
    ("POST", "/v1/appeals/{appeal_id}/decision"): {
        "none": 401, "admin": 403, "inspector": 403, "reviewer": 200,
        "hr_own": 403, "hr_other": 403, "self": 403, "other_person": 403,
    },
    # measures: a queue is filtered to the caller's tasks (decisions.md "Who acts on measures")
    ("GET", "/v1/measures"): {
        "none": 401, "admin": 200, "inspector": 403, "reviewer": 200,
        "hr_own": 200, "hr_other": 200, "self": 403, "other_person": 403,
    },
    # the world's measure is an institution talk at A: the hospital's task, not the agency's (404)
    ("POST", "/v1/measures/{measure_id}/complete"): {
        "none": 401, "admin": 200, "inspector": 403, "reviewer": 404,
        "hr_own": 200, "hr_other": 404, "self": 403, "other_person": 403,
    },
    # here the world's decision is 7 points, so its measure is a public notice: the agency's task
    ("POST", "/v1/measures/{measure_id}/publish"): {
        "none": 401, "admin": 200, "inspector": 403, "reviewer": 200,
        "hr_own": 404, "hr_other": 404, "self": 403, "other_person": 403,
    },
    # events and webhooks -----------------------------------------------------------------------------
    ("GET", "/v1/events"): {
        "none": 401, "admin": 200, "inspector": 200, "reviewer": 200,
        "hr_own": 200, "hr_other": 200, "self": 200, "other_person": 200,
    },
    ("GET", "/v1/webhooks"): {
        "none": 401, "admin": 200, "inspector": 403, "reviewer": 200,
        "hr_own": 200, "hr_other": 200, "self": 403, "other_person": 403,
    },
    ("POST", "/v1/webhooks"): {
        "none": 401, "admin": 201, "inspector": 403, "reviewer": 201,
        "hr_own": 201, "hr_other": 201, "self": 403, "other_person": 403,
    },
    # the world's subscription belongs to A's HR system: another institution's, or the agency's
    # reviewer, does not see it (404); admin sees everything
    ("DELETE", "/v1/webhooks/{webhook_id}"): {
        "none": 401, "admin": 204, "inspector": 403, "reviewer": 404,
        "hr_own": 204, "hr_other": 404, "self": 403, "other_person": 403,
    },
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): {
        "none": 401, "admin": 200, "inspector": 403, "reviewer": 404,
        "hr_own": 200, "hr_other": 404, "self": 403, "other_person": 403,
    },
    # audit and policy ----------------------------------------------------------------------------------
    ("GET", "/v1/audit"): {
        "none": 401, "admin": 200, "inspector": 403, "reviewer": 200,
        "hr_own": 403, "hr_other": 403, "self": 403, "other_person": 403,
    },
    ("GET", "/v1/policy"): {
        "none": 401, "admin": 200, "inspector": 200, "reviewer": 200,
        "hr_own": 200, "hr_other": 200, "self": 200, "other_person": 200,
    },
    # the agency's desk: statistics for the agency, and an HR system's for its own institution
    # (B's key gets B's figures, none of A's); the public notice register for every role
    ("GET", "/v1/statistics"): {
        "none": 401, "admin": 200, "inspector": 403, "reviewer": 200,
        "hr_own": 200, "hr_other": 200, "self": 403, "other_person": 403,
    },
    ("GET", "/v1/notices"): {
        "none": 401, "admin": 200, "inspector": 200, "reviewer": 200,
        "hr_own": 200, "hr_other": 200, "self": 200, "other_person": 200,
    },
    # health: no auth at all, whatever key is sent
    ("GET", "/health/live"): {
        "none": 200, "admin": 200, "inspector": 200, "reviewer": 200,
        "hr_own": 200, "hr_other": 200, "self": 200, "other_person": 200,
    },
    ("GET", "/health/ready"): {
        "none": 200, "admin": 200, "inspector": 200, "reviewer": 200,
        "hr_own": 200, "hr_other": 200, "self": 200, "other_person": 200,
    },
}  # fmt: skip

CASES = [(method, path, role) for method, path in OPERATIONS for role in ROLES]


# -- the world -------------------------------------------------------------------------------------


@dataclass
class World:
    institution_a: str
    institution_b: str
    person_p: str
    person_q: str
    violation_id: int
    measure_id: int
    repair_id: int
    repair_version: int
    webhook_id: int
    appeal_id: int | None = None
    keys: dict[str, str | None] = field(default_factory=dict)

    def path_values(self, path: str) -> dict[str, object]:
        values: dict[str, object] = {
            # {code} names the institution under /v1/institutions, the person under /v1/practitioners
            "code": self.institution_a if path.startswith("/v1/institutions/") else self.person_p,
            "institution_code": self.institution_a,
            "violation_id": self.violation_id,
            "appeal_id": self.appeal_id,
            "repair_id": self.repair_id,
            "measure_id": self.measure_id,
            "webhook_id": self.webhook_id,
        }
        return values


def _today() -> str:
    return local_today().isoformat()


def build_world(app, client, session, *, appeal: bool, institution_approved: bool, notice: bool) -> World:
    admin_key = make_key(session, "admin")
    admin = Api(client, admin_key)
    inspector_key = make_key(session, "inspector")
    inspector = Api(client, inspector_key)

    institution_a = admin.institution()
    institution_b = admin.institution()
    person_p = admin.practitioner()
    person_q = admin.practitioner()
    admin.register(person_p, institution_a, "2025-01-01")
    admin.register(person_q, institution_b, "2025-01-01")

    keys: dict[str, str | None] = {
        "none": None,
        "admin": admin_key,
        "inspector": inspector_key,
        "reviewer": make_key(session, "reviewer"),
        "hr_own": make_key(session, "hr_system", institution_code=institution_a),
        "hr_other": make_key(session, "hr_system", institution_code=institution_b),
        "self": make_key(session, "practitioner", practitioner_code=person_p),
        "other_person": make_key(session, "practitioner", practitioner_code=person_q),
    }

    # 3 points (B1-99, main responsibility) trigger an institution talk; 7 points (B3-01, general) a
    # public notice
    behaviour, responsibility = ("B3-01", "general") if notice else ("B1-99", "main")
    violation = inspector.violation(
        person_p, institution_a, behaviour_code=behaviour, responsibility=responsibility, decided_on=_today()
    )
    [measure] = [t for t in violation["triggered"] if t["type"] == "measure"]
    assert measure["kind"] == ("public_notice" if notice else "institution_talk")

    person_api = Api(client, keys["self"])
    appeal_id = None
    if appeal:
        appeal_id = person_api.post(
            f"/v1/violations/{violation['id']}/appeals", {"reason": "I was on leave that week"}
        )["id"]
    repair = person_api.post(
        "/v1/repairs",
        {
            "practitioner_code": person_p,
            "institution_code": institution_a,
            "activity": "online_study",
            "completed_on": _today(),
            "evidence_ref": "certificate-1",
        },
    )
    if institution_approved:
        repair = Api(client, keys["hr_own"]).post(
            f"/v1/repairs/{repair['id']}/institution-review",
            {"decision": "approve", "comment": "attended", "version": repair["version"]},
            status=200,
        )

    runtime = app.extensions["points_service"]
    subscription = webhooks.create_subscription(
        session,
        authenticate(session, keys["hr_own"], now=utc_now()),
        webhooks.CreateSubscription(url="https://hooks.example.com/a", event_types=("violation.recorded",)),
        keys=runtime.pii,
        allow_private=True,
        now=utc_now(),
    ).subscription
    session.flush()

    return World(
        institution_a=institution_a,
        institution_b=institution_b,
        person_p=person_p,
        person_q=person_q,
        violation_id=violation["id"],
        measure_id=measure["id"],
        repair_id=repair["id"],
        repair_version=repair["version"],
        webhook_id=subscription.id,
        appeal_id=appeal_id,
        keys=keys,
    )


# -- minimal valid bodies ----------------------------------------------------------------------------


def _body(method: str, path: str, world: World) -> dict | None:
    today = _today()
    bodies = {
        ("POST", "/v1/institutions"): lambda: {
            "code": code("H"),
            "name": "A new hospital",
            "kind": "medical_institution",
            "region_code": "130100",
        },
        ("POST", "/v1/practitioners"): lambda: {
            "code": code("P"),
            "name": "A new person",
            "id_number": new_id_number(),
            "category": "physician",
        },
        ("POST", "/v1/practitioners/{code}/registrations"): lambda: {
            "institution_code": world.institution_a,
            "start_date": "2025-01-01",
            "id_number": ID_NUMBERS[world.person_p],
        },
        ("POST", "/v1/practitioners/{code}/registrations/{institution_code}/end"): lambda: {
            "end_date": today,
            "reason": "left the hospital",
        },
        ("POST", "/v1/violations"): lambda: {
            "case_ref": code("CASE-"),
            "practitioner_code": world.person_p,
            "institution_code": world.institution_a,
            "behaviour_code": "B1-01",
            "responsibility": "general",
            "occurred_on": today,
            "decided_on": today,
        },
        ("POST", "/v1/violations/preview"): lambda: {
            "practitioner_code": world.person_p,
            "institution_code": world.institution_a,
            "behaviour_code": "B1-01",
            "responsibility": "general",
            "occurred_on": today,
            "decided_on": today,
        },
        ("POST", "/v1/eligibility/batch"): lambda: {"practitioner_codes": [world.person_p]},
        ("POST", "/v1/repairs"): lambda: {
            "practitioner_code": world.person_p,
            "institution_code": world.institution_a,
            "activity": "online_study",
            "completed_on": today,
            "evidence_ref": "certificate-2",
        },
        ("POST", "/v1/repairs/preview"): lambda: {
            "practitioner_code": world.person_p,
            "institution_code": world.institution_a,
            "activity": "online_study",
            "completed_on": today,
        },
        ("POST", "/v1/repairs/{repair_id}/institution-review"): lambda: {
            "decision": "approve",
            "comment": "attended",
            "version": world.repair_version,
        },
        ("POST", "/v1/repairs/{repair_id}/agency-review"): lambda: {
            "decision": "approve",
            "comment": "credited",
            "version": world.repair_version,
        },
        ("POST", "/v1/violations/{violation_id}/appeals"): lambda: {"reason": "I was on leave that week"},
        ("POST", "/v1/appeals/{appeal_id}/decision"): lambda: {
            "outcome": "upheld",
            "reason": "the file holds",
        },
        ("POST", "/v1/measures/{measure_id}/complete"): lambda: {"completed_on": today, "note": "talk held"},
        ("POST", "/v1/measures/{measure_id}/publish"): lambda: {"published_on": today, "note": "on the site"},
        ("POST", "/v1/webhooks"): lambda: {
            "url": f"https://{PUBLIC_HOOK_HOST}/b",
            "event_types": ["violation.recorded"],
        },
    }
    make = bodies.get((method, path))
    if make is None:
        assert method in ("GET", "DELETE"), f"no body for {method} {path}"
        return None
    return make()


@pytest.fixture
def public_dns(monkeypatch):
    """hooks.example.com resolves to a public address without asking a resolver (the sandbox has none).

    Nothing is sent to it: deliveries come from the dispatcher sweep, which no test here runs.
    """
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host == PUBLIC_HOOK_HOST:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port or 443))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


# -- the tests ---------------------------------------------------------------------------------------


def test_the_expected_table_covers_exactly_the_committed_operations():
    assert set(EXPECTED) == set(OPERATIONS)
    for operation, row in EXPECTED.items():
        assert set(row) == set(ROLES), operation


def test_there_are_eight_cases_per_operation():
    assert len(ROLES) == 8
    assert len(CASES) == 8 * len(OPERATIONS)
    assert len(OPERATIONS) == 37, "an operation was added or removed: extend EXPECTED"
    assert len(CASES) == 296


@pytest.mark.parametrize(("method", "path", "role"), CASES, ids=[f"{m} {p} {r}" for m, p, r in CASES])
def test_authorization_matrix(app, client, session, public_dns, method, path, role):
    operation = (method, path)
    world = build_world(
        app,
        client,
        session,
        appeal=operation != ("POST", "/v1/violations/{violation_id}/appeals"),
        institution_approved=operation == ("POST", "/v1/repairs/{repair_id}/agency-review"),
        notice=operation == ("POST", "/v1/measures/{measure_id}/publish"),
    )
    url = path.format(**world.path_values(path))
    key = world.keys[role]
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = _body(method, path, world)
    response = client.open(url, method=method, headers=headers, json=body)

    expected = EXPECTED[operation][role]
    assert response.status_code == expected, (
        f"{method} {url} as {role}: {response.status_code} {response.get_data(as_text=True)[:500]}"
    )
    if response.status_code >= 400:
        assert response.mimetype == PROBLEM, response.headers
        problem = response.get_json()
        assert problem["status"] == response.status_code
        assert {"type", "title", "detail"} <= set(problem)
    elif response.status_code != 204:
        assert response.mimetype == "application/json"
        _assert_nothing_leaks(world, operation, role, response)


def _assert_nothing_leaks(world: World, operation: tuple[str, str], role: str, response) -> None:
    """A caller outside P's and A's scope learns nothing of them, not even from a filtered list."""
    text = response.get_data(as_text=True)
    if role == "reviewer" and operation == ("GET", "/v1/webhooks"):
        assert "hooks.example.com/a" not in text  # A's HR system's subscription
    if role not in ("hr_other", "other_person"):
        return
    if operation == ("POST", "/v1/eligibility/batch"):
        # the batch echoes the codes asked for: a person outside the staff is `unknown`
        [result] = response.get_json()["results"]
        assert result["status"] == "unknown", result
        return
    assert world.person_p not in text, f"{role} sees {world.person_p}: {text[:500]}"
    assert world.institution_a not in text, f"{role} sees {world.institution_a}: {text[:500]}"
    assert "hooks.example.com/a" not in text
