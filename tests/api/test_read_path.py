"""The read path: reads on PostgreSQL run without BEGIN/COMMIT round trips, and the
answers are the same as in a transaction. The requests of the other API tests join the test's
transaction, so these use the app on the real engine."""

from __future__ import annotations

import time

import pytest
from factories import Api, make_key
from sqlalchemy import text

from points_service.persistence.engine import transaction


@pytest.mark.postgresql
def test_a_read_on_postgresql_is_autocommit_so_each_statement_is_its_own_transaction(committed_app):
    runtime = committed_app.extensions["points_service"]
    with transaction(runtime.primary_reads, write=False) as db:
        first = db.scalar(text("SELECT transaction_timestamp()"))
        time.sleep(0.01)
        second = db.scalar(text("SELECT transaction_timestamp()"))
    assert second > first
    with transaction(runtime.sessions, write=True) as db:
        first = db.scalar(text("SELECT transaction_timestamp()"))
        time.sleep(0.01)
        second = db.scalar(text("SELECT transaction_timestamp()"))
    assert second == first  # writes keep one transaction


def test_the_answers_of_reads_see_every_committed_write_at_once(committed_app):
    runtime = committed_app.extensions["points_service"]
    admin = Api(committed_app.test_client(), make_key(runtime.sessions, "admin"))
    person, hospital = admin.person()
    assert admin.get(f"/v1/practitioners/{person}/standing")["points_total"] == 0
    decision = admin.violation(person, hospital, behaviour_code="B2-01")
    standing = admin.get(f"/v1/practitioners/{person}/standing")
    assert standing["points_total"] == decision["points"] > 0
    assert admin.get(f"/v1/practitioners/{person}/eligibility")["eligible"] is True


def test_the_hot_reads_give_their_connection_back_to_the_pool_whatever_they_answer(committed_app):
    """Eligibility, batch and roster read on a Core connection of their own (requires(rows_only=True)):
    found, unknown or refused, each request returns it to the pool."""
    runtime = committed_app.extensions["points_service"]
    admin = Api(committed_app.test_client(), make_key(runtime.sessions, "admin"))
    person, hospital = admin.person()
    pool = runtime.primary_reads.kw["bind"].pool
    before = pool.checkedout()
    assert admin.get(f"/v1/practitioners/{person}/eligibility")["eligible"] is True
    admin.get("/v1/practitioners/NOBODY-HERE/eligibility", status=404)
    admin.get(f"/v1/practitioners/{person}/eligibility", status=422, query={"at": "yesterday"})
    batch = admin.post("/v1/eligibility/batch", {"practitioner_codes": [person, "NOBODY-HERE"]}, status=200)
    assert [r["status"] for r in batch["results"]] == ["active", "unknown"]
    assert [
        i["practitioner_code"] for i in admin.get(f"/v1/institutions/{hospital}/eligibility")["items"]
    ] == [person]
    admin.get("/v1/institutions/NOWHERE-HERE/eligibility", status=404)
    assert pool.checkedout() == before
