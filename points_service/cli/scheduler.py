"""`points-service scheduler run` and `points-service jobs run`: the sweeps, on time or by hand."""

from __future__ import annotations

import contextlib
import json
import logging
import signal

import click

from ._runtime import load_settings, runtime

JOBS = ["announce-transitions", "roll-over-year", "close-appeal-windows", "dispatch-webhooks", "reconcile"]


@click.group()
def scheduler() -> None:
    """The scheduler process (one per deployment; never inside web workers)."""


@scheduler.command("run")
def scheduler_run() -> None:
    """Run the scheduled sweeps in Asia/Shanghai until stopped."""
    from ..logs import configure_logging
    from ..scheduler import build_scheduler

    settings = load_settings()
    with runtime(settings) as (sessions, pii):
        configure_logging(settings.log_level)
        # APScheduler narrates every run at INFO; our own job lines say what each sweep did
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        click.echo("scheduler running (Asia/Shanghai); Ctrl-C stops it", err=True)
        running = build_scheduler(settings, sessions, pii)
        # graceful: a running sweep finishes its transaction before the process exits
        signal.signal(signal.SIGTERM, lambda *_: running.shutdown(wait=True))
        with contextlib.suppress(KeyboardInterrupt, SystemExit):
            running.start()


@click.group()
def jobs() -> None:
    """Run a scheduled sweep by hand."""


@jobs.command("run")
@click.argument("name", type=click.Choice(JOBS))
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="the legal day to sweep up to (default: today in Asia/Shanghai); never after today",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="run the sweep and roll it back: what it would do (may look ahead of today)",
)
def jobs_run(name: str, today, dry_run: bool) -> None:
    """Run one sweep now, exactly as the scheduler would (idempotent: a rerun changes nothing)."""
    from ..clock import utc_now
    from ..services.sweeps import FutureDay, run_job

    settings = load_settings()
    try:
        with runtime(settings) as (sessions, pii):
            result = run_job(
                sessions,
                name,
                settings=settings,
                pii=pii,
                now=utc_now(),
                today=today.date() if today else None,
                dry_run=dry_run,
            )
    except FutureDay as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(result, default=str))
