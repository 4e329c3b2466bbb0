"""openapi.yaml is generated from the code, committed, valid, and never drifts."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml
from openapi_spec_validator import validate

from points_service.cli.openapi import spec_dict

SPEC = Path(__file__).resolve().parents[2] / "openapi.yaml"


@cache
def committed() -> dict:
    return yaml.safe_load(SPEC.read_text("utf-8"))


def test_the_committed_openapi_matches_the_code():
    assert committed() == spec_dict(), "openapi.yaml drifted: run `make openapi` and commit it"


def test_the_committed_openapi_is_a_valid_openapi_document():
    validate(committed())


def test_every_operation_but_health_requires_a_bearer_key_and_documents_401_and_403():
    for path, operations in committed()["paths"].items():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            if path.startswith("/health"):
                assert operation.get("security", []) == []
                continue
            assert operation["security"] == [{"bearerAuth": []}], f"{method} {path}"
            assert {"401", "403"} <= set(operation["responses"]), f"{method} {path}"


def test_every_documented_error_is_problem_json():
    responses = committed()["components"]["responses"]
    for name in (
        "UNAUTHORIZED",
        "FORBIDDEN",
        "NOT_FOUND",
        "CONFLICT",
        "UNPROCESSABLE_ENTITY",
        "DEFAULT_ERROR",
    ):
        assert list(responses[name]["content"]) == ["application/problem+json"], name


def test_the_paths_of_api_md_are_all_there():
    paths = committed()["paths"]
    expected = {
        ("post", "/v1/institutions"),
        ("get", "/v1/institutions/{code}"),
        ("post", "/v1/practitioners"),
        ("get", "/v1/practitioners/{code}"),
        ("post", "/v1/practitioners/{code}/registrations"),
        ("post", "/v1/practitioners/{code}/registrations/{institution_code}/end"),
        ("post", "/v1/violations"),
        ("get", "/v1/violations/{violation_id}"),
        ("get", "/v1/practitioners/{code}/standing"),
        ("get", "/v1/practitioners/{code}/eligibility"),
        ("post", "/v1/eligibility/batch"),
        ("get", "/v1/institutions/{code}/eligibility"),
        ("get", "/v1/practitioners/{code}/history"),
        ("get", "/v1/policy"),
        ("get", "/health/live"),
        ("get", "/health/ready"),
    }
    assert expected <= {(m, p) for p, ops in paths.items() for m in ops if m != "parameters"}


def _operations():
    for path, operations in committed()["paths"].items():
        for method, operation in operations.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, operation


def _resolve(node: dict) -> dict:
    """A `$ref` to a component, followed."""
    if "$ref" not in node:
        return node
    _, section, kind, name = node["$ref"].split("/")
    return committed()[section][kind][name]


def _headers(operation: dict) -> set[str]:
    return {_resolve(p)["name"] for p in operation.get("parameters", []) if _resolve(p)["in"] == "header"}


def test_every_operation_has_a_unique_camel_case_verb_as_operation_id():
    ids = [operation.get("operationId") for _, _, operation in _operations()]
    assert None not in ids
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    verbs = ("get", "list", "create", "record", "submit", "review", "file", "decide", "complete")
    verbs += ("publish", "delete", "end", "preview")
    for operation_id in ids:
        assert re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", operation_id), operation_id
        assert operation_id.startswith(verbs), operation_id
    by_route = {(m, p): o["operationId"] for p, m, o in _operations()}
    assert by_route[("get", "/v1/practitioners/{code}/eligibility")] == "getEligibility"
    assert by_route[("post", "/v1/violations")] == "recordViolation"
    assert by_route[("get", "/v1/repairs")] == "listRepairs"
    assert by_route[("post", "/v1/institutions")] == "createInstitution"


# the writes wrapped with api.idempotency.idempotent
HONOUR_IDEMPOTENCY_KEY = {
    "createInstitution",
    "createPractitioner",
    "createRegistration",
    "endRegistration",
    "recordViolation",
    "submitRepair",
    "fileAppeal",
}


def test_the_idempotency_key_header_is_declared_on_exactly_the_writes_that_honour_it():
    declared = {o["operationId"] for _, _, o in _operations() if "Idempotency-Key" in _headers(o)}
    assert declared == HONOUR_IDEMPOTENCY_KEY


def test_if_match_is_declared_where_versions_apply_and_required_unless_the_body_has_a_version():
    operations = {o["operationId"]: o for _, _, o in _operations()}
    declared = {name for name, o in operations.items() if "If-Match" in _headers(o)}
    assert declared == {"reviewRepairAsInstitution", "reviewRepairAsAgency", "decideAppeal"}
    for name in declared:
        assert "412" in operations[name]["responses"], name
    # a review must say which version it saw, by one means or the other
    for name in ("reviewRepairAsInstitution", "reviewRepairAsAgency"):
        assert "428" in operations[name]["responses"], name
    assert "428" not in operations["decideAppeal"]["responses"]
    review = committed()["components"]["schemas"]["RepairReview"]
    assert "version" in review["properties"] and "version" not in review.get("required", [])


def _problem_json(response: dict) -> bool:
    return list(_resolve(response)["content"]) == ["application/problem+json"]


def test_every_v1_operation_documents_429_and_503_with_retry_after_and_413_where_it_takes_a_body():
    v1 = [(p, m, o) for p, m, o in _operations() if p.startswith("/v1/")]
    assert len(v1) > 30
    for path, method, operation in v1:
        responses = operation["responses"]
        for status in ("429", "503"):
            assert status in responses, (method, path, status)
            assert _problem_json(responses[status]), (method, path, status)
            assert "Retry-After" in _resolve(responses[status])["headers"], (method, path, status)
        takes_body = "requestBody" in operation
        assert ("413" in responses) == takes_body, (method, path)
        if takes_body:
            assert _problem_json(responses["413"]), (method, path)
    bodies = [o for p, m, o in v1 if "requestBody" in o]
    assert len(bodies) >= 14


def test_every_documented_error_answer_is_problem_json():
    for path, method, operation in _operations():
        for status, response in operation["responses"].items():
            if status == "default" or int(status) >= 400:
                assert _problem_json(response), (method, path, status)
