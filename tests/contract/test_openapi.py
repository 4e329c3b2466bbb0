"""openapi.yaml is generated from the code, committed, valid, and never drifts."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from openapi_spec_validator import validate

from points_service.cli import spec_dict

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
