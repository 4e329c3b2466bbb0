"""The demo people's snapshots and measure tasks: what rules.effects.plan makes of the ledger written."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

from sqlalchemy.orm import Session

from ..persistence.copy import copy_rows, reserve_ids
from ..persistence.models import Measure
from ..rules import standing as rules
from ..rules.effects import Snapshot, plan
from ..services.imports.snapshots import copy_snapshots
from .seeding import Case, DemoSummary, Seeding

# (practitioner index, the measure as the rules derive it)
NewMeasure = tuple[int, rules.Measure]


def write_snapshots(session: Session, seeding: Seeding, summary: DemoSummary) -> list[NewMeasure]:
    """Every person's snapshot, planned by rules.effects from the ledger written, as a write would
    store it; answers the measure tasks the plans open. The events the plans would announce are
    left out: demo data is a past that no client of the feed was there to see."""
    own_cases: dict[int, list[Case]] = defaultdict(list)
    for case in seeding.cases:
        own_cases[case.person].append(case)
    empty = rules.PersonState()
    measures: list[NewMeasure] = []

    def planned() -> Iterator[tuple[int, str, int, Snapshot]]:
        for i, code in enumerate(seeding.codes):
            own = own_cases.get(i, [])
            after = rules.derive_state(
                decisions=[c.decision() for c in own],
                registrations=seeding.registrations_of[i],
                policies=seeding.policies.profiles,
            )
            effects = plan(
                practitioner_code=code,
                before=empty,
                after=after,
                announced=None,
                live_tasks=(),
                today=seeding.today,
            )
            if own:
                summary.people_suspended_ever += bool(after.suspensions)
                summary.people_terminated += bool(after.terminations)
            measures.extend((i, m) for m in effects.open_measures)
            summary.status[effects.snapshot.announced_status] += 1
            yield seeding.person_ids[i], code, len(own), effects.snapshot

    # derived while the database ingests: the snapshots stream into COPY
    copy_snapshots(session, planned(), now=seeding.now)
    return measures


def write_measures(session: Session, seeding: Seeding, measures: Sequence[NewMeasure]) -> None:
    """Pending tasks at the institution of the decision that triggered each."""
    institution_of = {c.violation_id: seeding.institution_ids[c.institution] for c in seeding.cases}
    copy_rows(
        session,
        Measure,
        (
            "id",
            "practitioner_id",
            "institution_id",
            "violation_id",
            "year",
            "kind",
            "triggered_on",
            "state",
            "created_at",
        ),
        (
            (
                mid,
                seeding.person_ids[i],
                institution_of[m.violation_id],
                m.violation_id,
                m.year,
                m.kind,
                m.triggered_on,
                "pending",
                seeding.now,
            )
            for mid, (i, m) in zip(reserve_ids(session, Measure, len(measures)), measures, strict=True)
        ),
    )
