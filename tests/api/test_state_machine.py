"""The materialised state never drifts from the ledger.

Random sequences of registrations, decisions, appeals (upheld, amended, revoked), repairs and
registration ends go through the HTTP API; after every step the stored snapshot must equal the
rules applied afresh to the ledger, the live measure tasks must equal the derived measures, and
the eligibility answers of the API must agree with the derived state.
"""

from __future__ import annotations

import datetime as dt
import os

from factories import Api, code, joined, make_key, new_id_number
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from points_service.clock import local_today
from points_service.persistence import queries
from points_service.persistence.models import Measure
from points_service.rules.calendar import add_years
from points_service.rules.snapshot import state_to_mapping
from points_service.rules.standing import eligibility_on
from points_service.services.state import derive

TODAY = local_today()


def _days(*offsets: int) -> list[str]:
    # never before the scheme (2025-01-02, after the registrations start) and never in the future
    return sorted({max(TODAY - dt.timedelta(days=o), dt.date(2025, 1, 2)).isoformat() for o in offsets})


# mostly recent: a decision can only be appealed within 15 working days (rule 23); the New Year pair
# puts points on both sides of a reset
DECISION_DAYS = _days(0, 1, 3, 6, 10, 400) + [f"{TODAY.year - 1}-12-31", f"{TODAY.year}-01-01"]
REGISTRATION_STARTS = [
    "2025-01-01",
    *_days(100),
    (TODAY + dt.timedelta(days=40)).isoformat(),
    add_years(TODAY, 3).isoformat(),
]
REGISTRATION_ENDS = _days(200, 20)
PROBE_DAYS = [TODAY - dt.timedelta(days=2), TODAY + dt.timedelta(days=200)]
ACTIVITIES = ["online_study", "offline_training", "policy_promotion", "inspection_participation"]
EXAMPLES = int(os.environ.get("STATE_MACHINE_EXAMPLES", "6"))


def test_the_stored_state_always_equals_the_rules_applied_to_the_ledger(engine, base_app):
    policies = base_app.extensions["points_service"].settings.policies

    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.connection = engine.connect()
            self.outer = self.connection.begin()
            self.runtime = base_app.extensions["points_service"]
            base_app.extensions["points_service"] = joined(self.runtime, self.connection)
            client = base_app.test_client()
            with self._session() as session:
                self.admin = Api(client, make_key(session, "admin"))
                self.reviewer = Api(client, make_key(session, "reviewer"))
                session.commit()
            self.institutions = [
                self.admin.institution(region_code="130100"),
                self.admin.institution(region_code="630100"),
            ]
            with self._session() as session:
                self.hr = [
                    Api(client, make_key(session, "hr_system", institution_code=i)) for i in self.institutions
                ]
                session.commit()
            self.people = []
            for _ in range(3):
                person = code("P")
                self.admin.post(
                    "/v1/practitioners",
                    {"code": person, "name": person, "id_number": new_id_number(), "category": "nurse"},
                )
                for institution in self.institutions:  # multi-site, under both profiles
                    self.admin.register(person, institution, "2025-01-01")
                self.people.append(person)
            self.violations: list[int] = []

        def _session(self) -> Session:
            return Session(
                bind=self.connection, join_transaction_mode="create_savepoint", expire_on_commit=False
            )

        def teardown(self):
            base_app.extensions["points_service"] = self.runtime
            self.outer.rollback()
            self.connection.close()

        @rule(
            person=st.integers(0, 2),
            institution=st.integers(0, 1),
            start=st.sampled_from(REGISTRATION_STARTS),
        )
        def register(self, person, institution, start):
            self.admin.register(
                self.people[person], self.institutions[institution], start, status=(200, 201, 409)
            )

        @rule(person=st.integers(0, 2), institution=st.integers(0, 1), end=st.sampled_from(REGISTRATION_ENDS))
        def end_registration(self, person, institution, end):
            self.admin.post(
                f"/v1/practitioners/{self.people[person]}/registrations/{self.institutions[institution]}/end",
                {"end_date": end, "reason": "left"},
                status=(200, 404, 422),
            )

        @rule(
            person=st.integers(0, 2),
            institution=st.integers(0, 1),
            points=st.integers(1, 12),
            decided_on=st.sampled_from(DECISION_DAYS),
        )
        def record_violation(self, person, institution, points, decided_on):
            band = (points - 1) // 3 + 1
            body = self.admin.violation(
                self.people[person],
                self.institutions[institution],
                behaviour_code=f"B{band}-99",
                points=points,
                decided_on=decided_on,
                occurred_on="2025-01-02",
                status=(201, 422),
            )
            if "id" in body:
                self.violations.append(body["id"])

        @rule(
            pick=st.integers(0, 50),
            outcome=st.sampled_from(["upheld", "amended", "revoked"]),
            points=st.integers(1, 12),
        )
        def appeal(self, pick, outcome, points):
            if not self.violations:
                return
            violation = self.violations[pick % len(self.violations)]
            filed = self.admin.post(
                f"/v1/violations/{violation}/appeals", {"reason": "disputed"}, status=(201, 409, 422)
            )
            if filed.get("status") != "open":
                return
            decision = {"outcome": outcome, "reason": "reviewed"}
            if outcome == "amended":
                decision["points"] = points
            self.reviewer.post(f"/v1/appeals/{filed['id']}/decision", decision, status=(200, 422))

        @precondition(lambda self: self.violations)
        @rule(person=st.integers(0, 2), activity=st.sampled_from(ACTIVITIES))
        def repair(self, person, activity):
            body = {
                "practitioner_code": self.people[person],
                "institution_code": self.institutions[0],
                "activity": activity,
                "completed_on": TODAY.isoformat(),
                "evidence_ref": "certificate",
            }
            submitted = self.admin.post("/v1/repairs", body, status=(201, 422))
            if submitted.get("status") != "submitted":
                return
            reviewed = self.hr[0].post(
                f"/v1/repairs/{submitted['id']}/institution-review",
                {"decision": "approve", "version": submitted["version"]},
                status=200,
            )
            self.reviewer.post(
                f"/v1/repairs/{submitted['id']}/agency-review",
                {"decision": "approve", "version": reviewed["version"]},
                status=(200, 422),
            )

        @invariant()
        def stored_state_equals_the_ledger_replayed(self):
            with self._session() as session:
                for person in self.people:
                    practitioner = queries.practitioner_by_code(session, person)
                    derived = derive(session, practitioner, policies)
                    stored = queries.snapshot_of(session, practitioner.id)
                    assert stored.state == state_to_mapping(derived)
                    live = {
                        (m.year, m.kind, m.violation_id)
                        for m in session.scalars(
                            select(Measure).where(
                                Measure.practitioner_id == practitioner.id, Measure.state != "cancelled"
                            )
                        )
                    }
                    assert live == {(m.year, m.kind, m.violation_id) for m in derived.measures}
                    for day in PROBE_DAYS:
                        answer = self.admin.get(
                            f"/v1/practitioners/{person}/eligibility", query={"at": day.isoformat()}
                        )
                        expected = eligibility_on(derived, day)
                        assert (answer["eligible"], answer["status"], answer["until"]) == (
                            expected.eligible,
                            expected.status,
                            expected.until.isoformat() if expected.until else None,
                        )

    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=25,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
