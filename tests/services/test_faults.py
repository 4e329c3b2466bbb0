"""Faults lose nothing: a database that is gone is a 503 problem, never a partial
write; the pool recovers by itself when it returns; a failure between the ledger insert and the
state update leaves neither. Termination of backends needs PostgreSQL (tests marked so)."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

import pytest
from factories import Api, auth, code, make_key
from factories import assert_problem as _problem
from sqlalchemy import func, select, text

from points_service import create_app
from points_service.clock import local_today
from points_service.persistence.engine import make_web_engine
from points_service.persistence.models import AuditEvent, LedgerEntry, OutboxEvent, Practitioner, Violation
from points_service.services import violations
from points_service.settings import Settings


def _unavailable(response) -> dict:
    body = _problem(response, 503, "database-unavailable")
    assert body["detail"] == "the database is not reachable; nothing was written; retry later"
    assert response.headers["Retry-After"] == "5"
    return body


def _violation(person: str, hospital: str, case_ref: str) -> dict:
    today = local_today().isoformat()
    return {
        "case_ref": case_ref,
        "practitioner_code": person,
        "institution_code": hospital,
        "behaviour_code": "B2-01",
        "responsibility": "general",
        "occurred_on": today,
        "decided_on": today,
    }


def _traces(sessions, person: str, *, case_ref: str, request_id: str) -> dict[str, int]:
    """What a violation write leaves behind, counted in a session of its own."""
    with sessions() as session:
        person_id = session.scalar(select(Practitioner.id).where(Practitioner.code == person))

        def count(model, *where) -> int:
            return session.scalar(select(func.count()).select_from(model).where(*where))

        return {
            "violations": count(Violation, Violation.case_ref == case_ref),
            "ledger": count(LedgerEntry, LedgerEntry.practitioner_id == person_id),
            "audit": count(AuditEvent, AuditEvent.request_id == request_id),
            "events": count(
                OutboxEvent,
                OutboxEvent.practitioner_id == person_id,
                OutboxEvent.type == "violation.recorded",
            ),
        }


NOTHING = {"violations": 0, "ledger": 0, "audit": 0, "events": 0}
ONCE = {"violations": 1, "ledger": 1, "audit": 1, "events": 1}


# -- (a) the database is not there at all -----------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://postgres@127.0.0.1:1/points?connect_timeout=2",  # a closed port
        "sqlite:////nonexistent-points-dir/nested/points.db",  # a file that cannot be opened
    ],
    ids=["postgresql-closed-port", "sqlite-unopenable-file"],
)
def test_with_the_database_gone_requests_are_503_with_retry_after_and_only_liveness_is_ok(url):
    engine = make_web_engine(url)
    try:
        app = create_app(Settings(database_url=url, rate_limit=""), engine=engine)
        client = app.test_client()
        key = auth("pts_" + "x" * 43)
        _unavailable(client.get("/v1/policy", headers=key))
        _unavailable(client.get("/v1/practitioners/P1/standing", headers=key))
        _unavailable(client.post("/v1/violations", json=_violation("P1", "H1", "CASE-1"), headers=key))
        _unavailable(
            client.post(
                "/v1/institutions",
                json={"code": "H1", "name": "H", "kind": "medical_institution", "region_code": "130100"},
                headers={**key, "Idempotency-Key": uuid.uuid4().hex},
            )
        )
        ready = client.get("/health/ready")
        _problem(ready, 503, "not-ready")
        live = client.get("/health/live")
        assert live.status_code == 200 and live.get_json() == {"status": "ok"}
        # no key at all is still a 401: authentication comes before the database
        _problem(client.get("/v1/policy"), 401, "not-authenticated")
    finally:
        engine.dispose()


# -- (b), (c) PostgreSQL backends terminated -------------------------------------------------------


@contextmanager
def _own_app(settings, database_url: str):
    """An app on an engine of its own, tagged with an application_name only its connections carry."""
    name = f"points-fault-{uuid.uuid4().hex[:12]}"
    engine = make_web_engine(database_url, connect_args={"application_name": name})
    try:
        yield create_app(settings, engine=engine), name
    finally:
        engine.dispose()


@pytest.fixture
def own_app(settings, database_url):
    with _own_app(settings, database_url) as app_and_name:
        yield app_and_name


def _backends(engine, application_name: str) -> set[int]:
    with engine.connect() as conn:
        return set(
            conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name = :name"
                ),
                {"name": application_name},
            ).scalars()
        )


def _terminate(engine, application_name: str) -> int:
    with engine.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = :name"
            ),
            {"name": application_name},
        ).scalars()
        return sum(1 for ok in killed if ok)


def _setup(app) -> tuple[Api, str, str, str]:
    sessions = app.extensions["points_service"].sessions
    admin = Api(app.test_client(), make_key(sessions, "admin"))
    inspector_key = make_key(sessions, "inspector")
    person, hospital = admin.person()
    return admin, inspector_key, person, hospital


@pytest.mark.postgresql
def test_after_its_backends_are_terminated_the_pool_recovers_by_itself(own_app, engine):
    app, name = own_app
    admin, _, person, hospital = _setup(app)
    admin.get(f"/v1/practitioners/{person}")
    before = _backends(engine, name)
    assert before, "the app holds no pooled connection to terminate"

    assert _terminate(engine, name) == len(before)
    assert _backends(engine, name) == set()

    # the very next requests are served: the first read that meets a dead connection runs again on
    # a fresh one, and the pool, invalidated by that disconnect, replaces the others
    assert admin.get(f"/v1/practitioners/{person}")["code"] == person
    other = admin.institution()
    admin.get(f"/v1/institutions/{other}")
    after = _backends(engine, name)
    assert after and not (after & before)


@pytest.mark.postgresql
def test_a_backend_terminated_mid_request_is_a_503_and_nothing_of_the_write_remains(
    own_app, engine, monkeypatch
):
    app, name = own_app
    admin, inspector_key, person, hospital = _setup(app)
    sessions = app.extensions["points_service"].sessions
    standing = admin.get(f"/v1/practitioners/{person}/standing")
    # after the violation and its ledger entry were written, the connection dies under the request
    _interrupt_after_the_ledger_entry(
        monkeypatch, lambda session, _: session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
    )
    case_ref, rid = code("CASE-"), f"fault-{uuid.uuid4().hex}"
    client = app.test_client()
    body = _violation(person, hospital, case_ref)
    response = client.post("/v1/violations", json=body, headers={**auth(inspector_key), "X-Request-ID": rid})
    assert _unavailable(response)["request_id"] == rid
    monkeypatch.undo()

    assert _traces(sessions, person, case_ref=case_ref, request_id=rid) == NOTHING
    assert admin.get(f"/v1/practitioners/{person}/standing") == standing

    # the next request works, and the retried write counts once
    retry = client.post(
        "/v1/violations", json=body, headers={**auth(inspector_key), "X-Request-ID": rid + "-2"}
    )
    assert retry.status_code == 201, retry.get_data(as_text=True)
    assert _traces(sessions, person, case_ref=case_ref, request_id=rid + "-2") == ONCE
    assert admin.get(f"/v1/practitioners/{person}/standing")["points_total"] == 4


# -- (d) a failure between the ledger insert and the state update ---------------------------------


def _interrupt_after_the_ledger_entry(monkeypatch, interrupt) -> None:
    """A decision's ledger entry is flushed before the person's state is recomputed: call
    `interrupt(session, practitioner_id)` there, before the snapshot, the events, the measures and
    the audit row are written."""
    recompute = violations.recompute

    def interrupted(session, practitioner, **kwargs):
        interrupt(session, practitioner.id)
        return recompute(session, practitioner, **kwargs)

    monkeypatch.setattr(violations, "recompute", interrupted)


def _fail_between_ledger_and_state(monkeypatch) -> list[int]:
    """The write fails after its ledger entry; returns how many entries the person had then."""
    seen: list[int] = []

    def broken(session, practitioner_id):
        seen.append(
            session.scalar(
                select(func.count())
                .select_from(LedgerEntry)
                .where(LedgerEntry.practitioner_id == practitioner_id)
            )
        )
        raise RuntimeError("injected failure between the ledger insert and the state update")

    _interrupt_after_the_ledger_entry(monkeypatch, broken)
    return seen


def _assert_failure_leaves_nothing(app, monkeypatch) -> None:
    sessions = app.extensions["points_service"].sessions
    admin, inspector_key, person, hospital = _setup(app)
    client = app.test_client()
    standing = admin.get(f"/v1/practitioners/{person}/standing")
    eligibility = admin.get(f"/v1/practitioners/{person}/eligibility")

    seen = _fail_between_ledger_and_state(monkeypatch)
    case_ref, rid = code("CASE-"), f"fault-{uuid.uuid4().hex}"
    body = _violation(person, hospital, case_ref)
    response = client.post("/v1/violations", json=body, headers={**auth(inspector_key), "X-Request-ID": rid})
    problem = _problem(response, 500, "internal-error")
    assert problem["detail"] == "an unexpected error occurred; nothing was written"
    assert "injected" not in response.get_data(as_text=True)
    assert seen == [1]  # the failure did come after the ledger insert
    monkeypatch.undo()

    assert _traces(sessions, person, case_ref=case_ref, request_id=rid) == NOTHING
    assert admin.get(f"/v1/practitioners/{person}/standing") == standing
    assert admin.get(f"/v1/practitioners/{person}/eligibility") == eligibility

    retry = client.post(
        "/v1/violations", json=body, headers={**auth(inspector_key), "X-Request-ID": rid + "-2"}
    )
    assert retry.status_code == 201, retry.get_data(as_text=True)
    assert _traces(sessions, person, case_ref=case_ref, request_id=rid + "-2") == ONCE


def test_a_failure_between_the_ledger_insert_and_the_state_update_leaves_neither(app, monkeypatch):
    _assert_failure_leaves_nothing(app, monkeypatch)


@pytest.mark.postgresql
def test_a_failure_between_the_ledger_insert_and_the_state_update_leaves_neither_when_committed(
    own_app, monkeypatch
):
    app, _ = own_app
    _assert_failure_leaves_nothing(app, monkeypatch)
