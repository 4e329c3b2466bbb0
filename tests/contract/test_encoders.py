"""The hot reads encode their answers directly (api/encoders.py), not through marshmallow: every
answer must still be exactly what the documented schema says — valid against openapi.yaml, and
equal to the schema's own dump of the same objects."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from factories import Api, code, make_key
from openapi_schema_validator import OAS30Validator

from points_service.api import encoders
from points_service.api.schemas.standing import EligibilityRead
from points_service.clock import local_today
from points_service.rules.standing import Eligibility
from points_service.services.eligibility import Answer

SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "openapi.yaml").read_text("utf-8"))


def _valid(name: str, body: dict) -> None:
    schema = {"$ref": f"#/components/schemas/{name}", "components": SPEC["components"]}
    errors = [e.message for e in OAS30Validator(schema).iter_errors(body)]
    assert not errors, (name, errors, body)


D = dt.date
ANSWERS = [
    Answer("P1", Eligibility(D(2026, 5, 1), True, "active", "registered", None)),
    Answer("P2", Eligibility(D(2026, 5, 1), True, "active", "registered", D(2026, 9, 1))),
    Answer("P3", Eligibility(D(2026, 5, 1), False, "suspended", "suspended from …", D(2026, 11, 10))),
    Answer("P4", Eligibility(D(2026, 5, 1), False, "terminated", "terminated …", None, D(2027, 4, 10))),
    Answer("P5", Eligibility(D(2026, 5, 1), False, "not_registered", "no registration …", D(2026, 6, 1))),
    Answer("P6", Eligibility(D(2026, 5, 1), False, "unknown", "no such practitioner", None)),
]


@pytest.mark.parametrize("answer", ANSWERS, ids=[a.eligibility.status + a.practitioner_code for a in ANSWERS])
def test_an_encoded_answer_is_the_schemas_dump_of_the_same_answer(answer):
    encoded = encoders.eligibility(answer)
    assert encoded == EligibilityRead().dump(answer)
    assert list(encoded) == list(EligibilityRead().dump(answer))  # the same order of fields
    _valid("EligibilityRead", encoded)


def _world(client, session):
    admin = Api(client, make_key(session, "admin"))
    inspector = Api(client, make_key(session, "inspector"))
    hospital = admin.institution()
    people = {}
    for name, behaviour in (("active", None), ("suspended", "B3-01"), ("terminated", "B4-01")):
        person = admin.practitioner()
        admin.register(person, hospital, "2025-01-01")
        if behaviour:
            inspector.violation(
                person,
                hospital,
                behaviour_code=behaviour,
                responsibility="main",
                decided_on=local_today().isoformat(),
            )
        people[name] = person
    people["later"] = admin.practitioner()
    admin.register(people["later"], hospital, (local_today() + dt.timedelta(days=30)).isoformat())
    return admin, hospital, people


def test_every_hot_answer_over_http_validates_against_the_committed_spec(client, session):
    admin, hospital, people = _world(client, session)
    statuses = set()
    for person in people.values():
        for query in ({}, {"institution_code": hospital}):
            response = client.get(
                f"/v1/practitioners/{person}/eligibility", query_string=query, headers=admin.headers
            )
            assert response.status_code == 200 and response.mimetype == "application/json"
            _valid("EligibilityRead", response.get_json())
            statuses.add(response.get_json()["status"])
    assert statuses == {"active", "suspended", "terminated", "not_registered"}

    batch = admin.post(
        "/v1/eligibility/batch", {"practitioner_codes": [*people.values(), code("P")]}, status=200
    )
    _valid("EligibilityBatchRead", batch)
    assert [r["status"] for r in batch["results"]][-1] == "unknown"

    first = admin.get(f"/v1/institutions/{hospital}/eligibility", query={"limit": 2})
    _valid("RosterPage", first)
    assert first["next_cursor"] is not None
    rest = admin.get(
        f"/v1/institutions/{hospital}/eligibility", query={"limit": 2, "cursor": first["next_cursor"]}
    )
    _valid("RosterPage", rest)
