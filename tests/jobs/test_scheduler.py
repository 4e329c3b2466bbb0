"""The scheduler process: APScheduler 3.11 in Asia/Shanghai, coalescing, one instance per
job, a catch-up run at start-up. The scheduler is built and inspected here, never started."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from click.testing import CliRunner

from points_service import scheduler as scheduler_module
from points_service.cli import main
from points_service.persistence.schema import upgrade_database
from points_service.settings import Settings

SESSIONS, PII = object(), object()  # building the scheduler must not touch the database
CRON = {
    "announce-transitions": {"hour": "0", "minute": "5"},
    "roll-over-year": {"month": "1", "day": "1", "hour": "0", "minute": "1"},
    "close-appeal-windows": {"hour": "0", "minute": "10"},
    "reconcile": {"hour": "3", "minute": "30"},
}
CATCH_UP = ["announce-transitions", "roll-over-year", "close-appeal-windows"]


@pytest.fixture
def plain_settings() -> Settings:
    return Settings(database_url="sqlite://")


@pytest.fixture
def built(plain_settings):
    scheduler = scheduler_module.build_scheduler(plain_settings, SESSIONS, PII)
    yield scheduler
    assert scheduler.state == STATE_STOPPED  # nothing here ever starts it


def _cron_fields(trigger: CronTrigger) -> dict[str, str]:
    return {f.name: str(f) for f in trigger.fields if not f.is_default}


def test_the_scheduler_is_a_blocking_scheduler_in_asia_shanghai_and_is_not_started_by_building_it(built):
    assert isinstance(built, BlockingScheduler)
    assert str(built.timezone) == "Asia/Shanghai"
    assert built.state == STATE_STOPPED and not built.running


def test_every_job_coalesces_and_runs_one_instance_at_a_time(built):
    # job defaults are applied when the scheduler starts; they are the scheduler's own settings
    assert built._job_defaults == {"coalesce": True, "max_instances": 1, "misfire_grace_time": 6 * 3600}


def test_the_jobs_are_the_five_sweeps_and_three_start_up_catch_ups(built):
    assert sorted(job.id for job in built.get_jobs()) == sorted(
        ["dispatch-webhooks", *CRON, *(f"{name}@start" for name in CATCH_UP)]
    )


@pytest.mark.parametrize("name", list(CRON))
def test_each_daily_or_yearly_sweep_runs_on_a_cron_in_shanghai_time(built, name):
    trigger = built.get_job(name).trigger
    assert isinstance(trigger, CronTrigger)
    assert str(trigger.timezone) == "Asia/Shanghai"
    assert _cron_fields(trigger) == CRON[name]


def test_roll_over_year_fires_just_after_midnight_on_1_january_shanghai_time(built):
    trigger = built.get_job("roll-over-year").trigger
    shanghai = trigger.timezone
    fire = trigger.get_next_fire_time(None, dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=shanghai))
    assert fire == dt.datetime(2027, 1, 1, 0, 1, tzinfo=shanghai)
    assert fire.astimezone(dt.UTC) == dt.datetime(2026, 12, 31, 16, 1, tzinfo=dt.UTC)


def test_webhooks_are_dispatched_every_ten_seconds(built):
    trigger = built.get_job("dispatch-webhooks").trigger
    assert isinstance(trigger, IntervalTrigger)
    assert trigger.interval == dt.timedelta(seconds=10)
    assert str(trigger.timezone) == "Asia/Shanghai"


@pytest.mark.parametrize("name", CATCH_UP)
def test_a_catch_up_run_of_each_time_based_sweep_happens_once_at_start_up(built, name):
    job = built.get_job(f"{name}@start")
    assert isinstance(job.trigger, DateTrigger)  # once, as soon as the scheduler starts
    assert job.name == f"{name} (start-up catch-up)"
    assert abs(job.trigger.run_date - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


def test_dispatch_and_reconcile_have_no_start_up_run(built):
    assert built.get_job("dispatch-webhooks@start") is None
    assert built.get_job("reconcile@start") is None


def test_each_job_runs_its_sweep_through_run_job_with_the_current_instant(built, plain_settings, monkeypatch):
    calls = []

    def fake_run_job(sessions, name, *, settings, pii, now):
        calls.append((sessions, name, settings, pii, now))
        return {"ok": True}

    monkeypatch.setattr(scheduler_module, "run_job", fake_run_job)
    before = dt.datetime.now(dt.UTC)
    for job in sorted(built.get_jobs(), key=lambda j: j.id):
        job.func()
    after = dt.datetime.now(dt.UTC)
    assert [name for _, name, *_ in calls] == [
        job.id.removesuffix("@start") for job in sorted(built.get_jobs(), key=lambda j: j.id)
    ]
    for sessions, _, job_settings, pii, now in calls:
        assert (sessions, job_settings, pii) == (SESSIONS, plain_settings, PII)
        assert now.tzinfo is not None and before <= now <= after


def test_a_failing_job_is_logged_and_does_not_kill_the_scheduler(built, monkeypatch, caplog):
    def failing(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(scheduler_module, "run_job", failing)
    with caplog.at_level(logging.ERROR, logger="points_service.scheduler"):
        built.get_job("announce-transitions").func()  # does not raise
    assert [r.getMessage() for r in caplog.records] == [
        "job announce-transitions failed; it will run again at its next time"
    ]


def test_scheduler_run_builds_the_scheduler_and_stops_quietly_on_ctrl_c(tmp_path, monkeypatch):
    started = []

    class FakeScheduler:
        def start(self):
            started.append(True)
            raise KeyboardInterrupt

    def fake_build(settings, sessions, pii):
        assert settings.database_url.endswith("sched.db")
        return FakeScheduler()

    monkeypatch.setattr(scheduler_module, "build_scheduler", fake_build)
    monkeypatch.setattr(logging, "basicConfig", lambda **kwargs: None)
    url = f"sqlite:///{tmp_path / 'sched.db'}"
    upgrade_database(url)  # the scheduler refuses a database that was never migrated
    result = CliRunner(env={"POINTS_DATABASE_URL": url}).invoke(main, ["scheduler", "run"])
    assert result.exit_code == 0, result.output
    assert started == [True]
