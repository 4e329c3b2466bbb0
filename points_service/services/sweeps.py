"""Scheduled duties: each an idempotent catch-up sweep of "everything due up to today".

Late, missed, doubled or manual runs all end in the same state: every announcement carries a
dedupe key or moves a marker in the same transaction, so a rerun finds nothing left to do.
`run_job` is the one wrapper: one transaction, an advisory lock on PostgreSQL, a job_run row.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from ..persistence import queries
from ..persistence.engine import WRITE, transaction, try_advisory_xact_lock
from ..persistence.models import Appeal, JobRun, Practitioner, PractitionerState, Violation
from ..persistence.pii import PiiKeys
from ..rules import standing as rules
from ..rules.appeals import appeal_window
from ..rules.calendar import local_date
from ..rules.snapshot import state_to_mapping
from ..settings import Settings
from . import events, webhooks
from .state import derive, recompute
from .violations import live_decision_entry

log = logging.getLogger("points_service.sweeps")
APPEAL_LOOKBACK = dt.timedelta(days=60)  # 15 working days never span more than this


@dataclass(frozen=True)
class SweepContext:
    settings: Settings
    pii: PiiKeys
    today: dt.date
    now: dt.datetime


def announce_transitions(session: Session, ctx: SweepContext) -> dict[str, int]:
    """Status changes that time alone brings (a queued suspension starts, one ends, a bar expires)."""
    due = session.scalars(
        select(PractitionerState.practitioner_id)
        .where(PractitionerState.next_transition_on <= ctx.today)
        .order_by(PractitionerState.practitioner_id)
    ).all()
    announced = bars = 0
    for practitioner_id in due:
        practitioner = _locked(session, practitioner_id)
        effects = recompute(
            session, practitioner, policies=ctx.settings.policies, now=ctx.now, today=ctx.today, sweep=True
        ).effects
        kinds = [e.type for e in effects.events]
        bars += kinds.count("eligibility.bar_expired")
        announced += len(kinds) - kinds.count("eligibility.bar_expired")
    return {"due": len(due), "announced": announced, "bars_expired": bars}


def _locked(session: Session, practitioner_id: int) -> Practitioner:
    """The person, locked: a write for them waits, or this sweep does."""
    code = session.scalar(select(Practitioner.code).where(Practitioner.id == practitioner_id))
    locked = queries.lock_practitioner(session, code)  # type: ignore[arg-type]
    assert locked is not None
    return locked


def roll_over_year(session: Session, ctx: SweepContext) -> dict[str, int]:
    """1 January: tell clients the points reset. Nothing is deleted or rewritten: totals are kept
    per score year, so the new year's standing is already zero (docs/rules.md rule 9)."""
    written = events.emit(
        session,
        "year.rolled_over",
        data={"year": ctx.today.year, "previous_year": ctx.today.year - 1},
        now=ctx.now,
        dedupe_key=f"year.rolled_over:{ctx.today.year}",
    )
    return {"announced": int(written)}


def close_appeal_windows(session: Session, ctx: SweepContext) -> dict[str, int]:
    """Say when a decision's appeal window has closed without an appeal (docs/rules.md rule 23)."""
    candidates = session.scalars(
        select(Violation)
        .options(selectinload(Violation.entries))
        .where(
            Violation.decided_on >= ctx.today - APPEAL_LOOKBACK,
            ~select(Appeal.id).where(Appeal.violation_id == Violation.id).exists(),
        )
        .order_by(Violation.id)
    ).all()
    closed = 0
    for violation in candidates:
        policy = ctx.settings.policies.get(violation.profile_id)
        window = appeal_window(violation.decided_on, policy.appeal_window_working_days, ctx.settings.calendar)
        if window.deadline >= ctx.today or live_decision_entry(violation) is None:
            continue
        code = session.scalar(select(Practitioner.code).where(Practitioner.id == violation.practitioner_id))
        closed += events.emit(
            session,
            "appeal.window_closed",
            data={
                "violation_id": violation.id,
                "practitioner_code": code,
                "deadline": window.deadline.isoformat(),
                "deadline_estimated": window.estimated,
            },
            now=ctx.now,
            practitioner_id=violation.practitioner_id,
            practitioner_code=code,
            institution_id=violation.institution_id,
            dedupe_key=f"appeal.window_closed:{violation.id}",
        )
    return {"checked": len(candidates), "closed": closed}


def dispatch_webhooks(sessions: sessionmaker[Session], ctx: SweepContext) -> dict[str, int]:
    """Fan new events out and claim what is due (one short transaction), send with no transaction
    open (a slow receiver must not hold the SQLite write lock), then record the outcomes."""
    with transaction(sessions, write=True) as session:
        disabled = webhooks.disable_orphaned(session, now=ctx.now)
        created = webhooks.fan_out(session, now=ctx.now)
        sends, unsendable = webhooks.claim_due(
            session, keys=ctx.pii, now=ctx.now, allow_private=ctx.settings.webhook_allow_private
        )
    results = [*unsendable, *((item, webhooks.send(item)) for item in sends)]
    with transaction(sessions, write=True) as session:
        counts = webhooks.record(session, results, now=ctx.now)
    return {"fanned_out": created, **counts, **({"disabled": disabled} if disabled else {})}


def reconcile(session: Session, ctx: SweepContext) -> dict[str, int]:
    """Recompute every snapshot from the ledger, and check what the feed last said of each person
    against their status today; a mismatch of either is logged and repaired (never expected).

    A status the feed got wrong (a sweep run for a day that had not come) is corrected by announcing
    the status of today, so clients that followed the feed follow the correction too.
    """
    mismatched = corrected = 0
    for practitioner_id in session.scalars(select(Practitioner.id).order_by(Practitioner.id)).all():
        practitioner = _locked(session, practitioner_id)
        snapshot = queries.snapshot_of(session, practitioner_id)
        derived = derive(session, practitioner, ctx.settings.policies)
        if snapshot is not None and snapshot.state == state_to_mapping(derived):
            if snapshot.announced_status == rules.eligibility_on(derived, ctx.today).status:
                continue
            corrected += 1
            log.error("the feed misstated the status of %s; announcing the correction", practitioner.code)
        else:
            mismatched += 1
            log.error("snapshot of %s differed from its ledger; rewritten", practitioner.code)
        recompute(
            session, practitioner, policies=ctx.settings.policies, now=ctx.now, today=ctx.today, sweep=True
        )
    return {"mismatched": mismatched, "status_corrected": corrected}


JOBS: dict[str, Callable[[Session, SweepContext], dict[str, Any]]] = {
    "announce-transitions": announce_transitions,
    "roll-over-year": roll_over_year,
    "close-appeal-windows": close_appeal_windows,
    "reconcile": reconcile,
}
# jobs that open their own short transactions (they talk to the network between them); several
# may run at once: leases and SKIP LOCKED keep them apart
SELF_TRANSACTED: dict[str, Callable[[sessionmaker[Session], SweepContext], dict[str, Any]]] = {
    "dispatch-webhooks": dispatch_webhooks,
}
JOB_NAMES = (*JOBS, *SELF_TRANSACTED)


class FutureDay(ValueError):
    """A sweep was asked to run for a day that has not come: it would announce what is not true."""


def run_job(
    sessions: sessionmaker[Session],
    name: str,
    *,
    settings: Settings,
    pii: PiiKeys,
    now: dt.datetime,
    today: dt.date | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Run one sweep in one transaction; on PostgreSQL a second runner of the same job skips.

    Time only moves forward: `today` may be any day up to the local date of `now`, never after it
    (the sweep would announce a change dated in the future as true today). A `dry_run` may look
    ahead: it runs the sweep and rolls everything back, and reports what it would have done.
    """
    real_today = local_date(now)
    ctx = SweepContext(settings=settings, pii=pii, today=today or real_today, now=now)
    if ctx.today > real_today and not dry_run:
        raise FutureDay(
            f"--today {ctx.today.isoformat()} is after today ({real_today.isoformat()} in Asia/Shanghai); "
            "a sweep never runs ahead of time (--dry-run previews it)"
        )
    if dry_run:
        if name in SELF_TRANSACTED:
            raise FutureDay(f"{name} talks to receivers; it has no dry run")
        session = sessions()
        try:
            session.connection(execution_options=WRITE)
            return {"dry_run": True, **JOBS[name](session, ctx)}
        finally:
            session.rollback()
            session.close()
    if name in SELF_TRANSACTED:
        result = SELF_TRANSACTED[name](sessions, ctx)
        with transaction(sessions, write=True) as session:
            session.add(
                JobRun(
                    job=name, today=ctx.today, started_at=now, finished_at=now, outcome="ok", detail=result
                )
            )
        return result
    sweep = JOBS[name]
    with transaction(sessions, write=True) as session:
        if not try_advisory_xact_lock(session, f"points_service:job:{name}"):
            log.info("job %s is running elsewhere; skipped", name)
            return {"skipped": True}
        result = sweep(session, ctx)
        session.add(
            JobRun(job=name, today=ctx.today, started_at=now, finished_at=now, outcome="ok", detail=result)
        )
    return result
