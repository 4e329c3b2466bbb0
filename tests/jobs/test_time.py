"""Time only moves forward: no sweep runs for a day that has not come, a dry run may look ahead, and
reconcile corrects a status the feed got wrong.

What was seen: `jobs run announce-transitions --today <after the suspension's end>` published
`eligibility.reinstated` for a doctor still suspended, flipped the stored status, and reconcile
found nothing wrong.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select
from test_sweeps import _subject, _suspended, _types

from points_service.cli import main
from points_service.clock import local_today, utc_now
from points_service.persistence.models import JobRun, OutboxEvent, PractitionerState
from points_service.persistence.schema import upgrade_database
from points_service.services.sweeps import FutureDay, run_job


def test_a_sweep_refuses_a_day_after_today(app, admin, inspector, outbox, session):
    person, _, sanction = _suspended(admin, inspector)
    rt = app.extensions["points_service"]
    after_the_end = dt.date.fromisoformat(sanction["end"])
    jobs_before = session.scalar(select(func.count()).select_from(JobRun))
    for job in ("announce-transitions", "roll-over-year", "close-appeal-windows", "reconcile"):
        with pytest.raises(FutureDay, match="after today"):
            run_job(rt.sessions, job, settings=rt.settings, pii=rt.pii, now=utc_now(), today=after_the_end)
    assert "eligibility.reinstated" not in _types(outbox, person)
    assert session.scalar(select(func.count()).select_from(JobRun)) == jobs_before
    status = session.scalar(
        select(PractitionerState.announced_status).where(PractitionerState.practitioner_code == person)
    )
    assert status == "suspended"


def test_a_dry_run_may_look_ahead_and_writes_nothing(app, admin, inspector, outbox, session):
    person, _, sanction = _suspended(admin, inspector)
    rt = app.extensions["points_service"]
    after_the_end = dt.date.fromisoformat(sanction["end"])
    events_before = session.scalar(select(func.count()).select_from(OutboxEvent))
    preview = run_job(
        rt.sessions,
        "announce-transitions",
        settings=rt.settings,
        pii=rt.pii,
        now=utc_now(),
        today=after_the_end,
        dry_run=True,
    )
    assert preview["dry_run"] is True and preview["announced"] >= 1
    assert session.scalar(select(func.count()).select_from(OutboxEvent)) == events_before
    assert "eligibility.reinstated" not in _types(outbox, person)


def test_reconcile_corrects_a_status_the_feed_got_wrong_with_an_event(
    app, admin, inspector, outbox, session, sweep
):
    person, _, _ = _suspended(admin, inspector)
    # what the look-ahead run used to leave behind: the feed said reinstated, the person is not
    snapshot = session.scalar(select(PractitionerState).where(PractitionerState.practitioner_code == person))
    snapshot.announced_status = "active"
    session.flush()
    first = sweep("reconcile")
    assert first == {"mismatched": 0, "status_corrected": 1}
    assert _types(outbox, person)[-1] == "eligibility.suspended"
    session.refresh(snapshot)
    assert snapshot.announced_status == "suspended"
    assert sweep("reconcile") == {"mismatched": 0, "status_corrected": 0}
    assert [kind for kind, _ in outbox(subject=_subject(person))].count("eligibility.suspended") == 2


def test_the_command_line_refuses_a_future_day_in_one_line_and_previews_it_with_dry_run(tmp_path):
    url = f"sqlite:///{tmp_path / 'time.db'}"
    upgrade_database(url)
    runner = CliRunner(env={"POINTS_DATABASE_URL": url})
    tomorrow = (local_today() + dt.timedelta(days=1)).isoformat()

    refused = runner.invoke(main, ["jobs", "run", "announce-transitions", "--today", tomorrow])
    assert refused.exit_code == 1
    assert "Traceback" not in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    assert f"--today {tomorrow} is after today" in refused.output

    preview = runner.invoke(main, ["jobs", "run", "announce-transitions", "--today", tomorrow, "--dry-run"])
    assert preview.exit_code == 0, preview.output
    assert json.loads(preview.stdout) == {"dry_run": True, "due": 0, "announced": 0, "bars_expired": 0}

    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(JobRun)).scalar() == 0
    engine.dispose()
