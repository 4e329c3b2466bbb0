"""Demo and benchmark data: institutions across provinces, practitioners with multi-site registrations,
and decisions over the previous and the current year with a realistic spread of points.

Not a use case of the service: `points-service demo seed` and the benchmark call it. The same seed
and sizes give the same data. Rows are written in bulk (persistence.copy), since a benchmark seeds a
million people; every decision is one the API would accept, and every snapshot and measure task is
what rules.effects.plan makes of the ledger written, as for any write.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..persistence import pii
from ..persistence.models import Practitioner
from ..rules.calendar import local_date
from ..rules.policy import PolicySet
from ..services.audit import record_audit
from .decisions import draw_decisions, write_decisions
from .registry import ID_SPACE, seed_institutions, seed_practitioners, seed_registrations
from .seeding import DemoSummary, Seeding, person_code
from .snapshots import write_measures, write_snapshots


def seed_demo(
    session: Session,
    *,
    practitioners: int,
    violations: int,
    institutions: int | None = None,
    seed: int = 1,
    keys: pii.PiiKeys,
    policies: PolicySet,
    now: dt.datetime,
    progress: Callable[[str], None] = lambda _: None,
) -> DemoSummary:
    """Realistic data for demos and benchmarks, in the session's transaction.

    Decisions are recorded as the API would (profile by province and date, default points for the
    behaviour and responsibility, occurred_on inside a registration, decided_on not in the future).
    """
    if practitioners > ID_SPACE:
        raise ValueError(f"at most {ID_SPACE} practitioners")
    if session.scalar(select(Practitioner.id).where(Practitioner.code == person_code(seed, 0))) is not None:
        raise ValueError(f"demo data for seed {seed} is already in this database; pass another --seed")
    seeding = Seeding(random.Random(seed), seed, local_date(now), now, policies, actor=f"demo:seed-{seed}")
    summary = DemoSummary(seed=seed)
    lap = _stopwatch(summary, progress)
    weights = seed_institutions(session, seeding, institutions or max(10, practitioners // 500), summary)
    lap("institutions")
    seed_practitioners(session, seeding, practitioners, weights, keys, summary)
    lap("practitioners written")
    seed_registrations(session, seeding, summary)
    lap("registrations")
    draw_decisions(seeding, violations)
    lap("decisions checked")
    write_decisions(session, seeding)
    summary.violations = len(seeding.cases)
    lap("decisions written")
    measures = write_snapshots(session, seeding, summary)
    lap("snapshots derived and written")
    write_measures(session, seeding, measures)
    summary.measures = len(measures)
    _audit(session, seeding, summary)
    lap("measures written")
    return summary


def _stopwatch(summary: DemoSummary, progress: Callable[[str], None]) -> Callable[[str], None]:
    """A lap timer: each call records and reports the time since the previous one."""
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        summary.timings[name] = time.perf_counter() - clock
        progress(f"{name}: {summary.timings[name]:.1f} s")
        clock = time.perf_counter()

    return lap


def _audit(session: Session, seeding: Seeding, summary: DemoSummary) -> None:
    record_audit(
        session,
        None,
        actor=seeding.actor,
        action="demo.seed",
        object_type="demo",
        object_id=str(seeding.seed),
        detail={
            "seed": seeding.seed,
            "institutions": summary.institutions,
            "practitioners": summary.practitioners,
            "registrations": summary.registrations,
            "violations": summary.violations,
            "measures": summary.measures,
        },
        now=seeding.now,
    )
    session.flush()


__all__ = ["DemoSummary", "seed_demo"]
