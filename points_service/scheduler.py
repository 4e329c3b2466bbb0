"""The scheduler process: APScheduler 3.11, in Asia/Shanghai, jobs in code, one instance per job.

Never started inside web workers. Each job is a catch-up sweep run by services.sweeps.run_job,
so a missed, late or doubled run does no harm; on PostgreSQL an advisory lock makes a second
scheduler process skip a job the first is running.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.orm import Session, sessionmaker

from .clock import utc_now
from .persistence.pii import PiiKeys
from .rules.calendar import LEGAL_TZ
from .services.sweeps import run_job
from .settings import Settings

log = logging.getLogger("points_service.scheduler")

# (job, trigger, also at start-up): the start-up run catches up on whatever was missed while down
SCHEDULE = (
    ("dispatch-webhooks", IntervalTrigger(seconds=10, timezone=LEGAL_TZ), False),
    ("announce-transitions", CronTrigger(hour=0, minute=5, timezone=LEGAL_TZ), True),
    ("roll-over-year", CronTrigger(month=1, day=1, hour=0, minute=1, timezone=LEGAL_TZ), True),
    ("close-appeal-windows", CronTrigger(hour=0, minute=10, timezone=LEGAL_TZ), True),
    ("reconcile", CronTrigger(hour=3, minute=30, timezone=LEGAL_TZ), False),
)


def build_scheduler(settings: Settings, sessions: sessionmaker[Session], pii: PiiKeys) -> BlockingScheduler:
    scheduler = BlockingScheduler(
        timezone=LEGAL_TZ,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 6 * 3600},
    )

    def runner(name: str):
        def run() -> None:
            try:
                result = run_job(sessions, name, settings=settings, pii=pii, now=utc_now())
                log.info("job %s: %s", name, result)
            except Exception:
                log.exception("job %s failed; it will run again at its next time", name)

        return run

    for name, trigger, at_start in SCHEDULE:
        scheduler.add_job(runner(name), trigger, id=name, name=name, replace_existing=True)
        if at_start:
            scheduler.add_job(runner(name), id=f"{name}@start", name=f"{name} (start-up catch-up)")
    return scheduler
