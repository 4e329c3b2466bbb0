"""The scheduled sweeps: catch-up, idempotent, announced once, one job_run row per run.

Facts are built through the HTTP API on the real clock (Asia/Shanghai); the sweeps then run with a
chosen `today`, so every date here is computed from `local_today()` and the suite passes on any day.
"""

from __future__ import annotations

import datetime as dt
import json
import socket

import pytest
from click.testing import CliRunner
from factories import Api, make_key
from sqlalchemy import create_engine, func, select

from points_service.cli import main
from points_service.clock import local_today, utc_now
from points_service.persistence.models import (
    JobRun,
    LedgerEntry,
    OutboxEvent,
    Practitioner,
    PractitionerState,
)
from points_service.persistence.schema import upgrade_database
from points_service.rules.appeals import appeal_window
from points_service.rules.calendar import LEGAL_TZ, add_months, add_years
from points_service.rules.snapshot import state_to_mapping
from points_service.services import events as events_module
from points_service.services.state import EMPTY_STATE

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
WORKING_DAYS = 15  # the appeal window (docs/rules.md rule 23)
NOTHING_TO_ANNOUNCE = {"due": 0, "announced": 0, "bars_expired": 0}
NOTHING_TO_DISPATCH = {"fanned_out": 0, "delivered": 0, "retrying": 0, "failed": 0}


def _suspended(admin: Api, inspector: Api) -> tuple[str, str, dict]:
    """A person suspended today for 4 months by one 9-point decision: (person, hospital, sanction)."""
    person, hospital = admin.person()
    violation = inspector.violation(
        person, hospital, behaviour_code="B3-01", responsibility="main", decided_on=local_today().isoformat()
    )
    (sanction,) = violation["triggered"]
    assert (sanction["kind"], sanction["start"], sanction["months"]) == (
        "suspension",
        local_today().isoformat(),
        4,
    )
    return person, hospital, sanction


def _terminated(admin: Api, inspector: Api) -> tuple[str, dict]:
    """A person terminated today by one 12-point decision, barred for 3 years: (person, sanction)."""
    person, hospital = admin.person()
    violation = inspector.violation(
        person, hospital, behaviour_code="B4-01", responsibility="main", decided_on=local_today().isoformat()
    )
    (sanction,) = violation["triggered"]
    assert sanction["kind"] == "termination"
    assert sanction["barred_until"] == add_years(local_today(), 3).isoformat()
    return person, sanction


def _subject(person: str) -> str:
    return f"practitioners/{person}"


def _types(outbox, person: str) -> list[str]:
    return [kind for kind, _ in outbox(subject=_subject(person))]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _snapshots(session, persons: list[str]) -> dict[str, tuple]:
    rows = session.execute(
        select(
            PractitionerState.practitioner_code,
            PractitionerState.announced_status,
            PractitionerState.next_transition_on,
            PractitionerState.state,
        ).where(PractitionerState.practitioner_code.in_(persons))
    ).all()
    session.expire_all()
    return {code: (status, on, state) for code, status, on, state in rows}


# -- run twice, the second run changes nothing ----------------------------------------------------


SWEEP_DAYS = {
    # the day each sweep has something to do: the suspension ended and the 3-year bar expired;
    # a new year; the appeal deadline of a decision of today has passed; today
    "announce-transitions": lambda today, calendar: add_years(today, 4),
    "roll-over-year": lambda today, calendar: dt.date(today.year + 1, 1, 1),
    "close-appeal-windows": lambda today, calendar: (
        appeal_window(today, WORKING_DAYS, calendar).deadline + dt.timedelta(days=1)
    ),
    "dispatch-webhooks": lambda today, calendar: today,
    "reconcile": lambda today, calendar: today,
}


@pytest.mark.parametrize("job", list(SWEEP_DAYS))
def test_each_sweep_run_twice_changes_nothing_the_second_time(
    job, session, admin, inspector, reviewer, sweep, counts, outbox, private_webhooks
):
    suspended, hospital, _ = _suspended(admin, inspector)
    terminated, _ = _terminated(admin, inspector)
    hook = reviewer.post(
        "/v1/webhooks",
        {"url": f"http://127.0.0.1:{_closed_port()}/hook", "event_types": ["violation.recorded"]},
    )
    # a second violation after subscribing: something for the dispatcher to fan out
    inspector.violation(suspended, hospital, behaviour_code="B1-01", decided_on=local_today().isoformat())
    if job == "reconcile":
        # a snapshot that drifted from its ledger (never expected): the first run repairs it
        snapshot = session.scalar(
            select(PractitionerState).where(PractitionerState.practitioner_code == suspended)
        )
        snapshot.state = state_to_mapping(EMPTY_STATE)
        session.flush()
    today = SWEEP_DAYS[job](local_today(), private_webhooks.settings.calendar)
    # the sweep runs on that day (a sweep never runs for a day after its `now`)
    now = max(utc_now(), dt.datetime.combine(today, dt.time(12), LEGAL_TZ).astimezone(dt.UTC))

    before = counts()
    first = sweep(job, today=today, now=now)
    after_first, snapshots = counts(), _snapshots(session, [suspended, terminated])
    second = sweep(job, today=today, now=now)
    after_second = counts()

    assert after_first["job_run"] == before["job_run"] + 1
    assert after_second == {**after_first, "job_run": after_first["job_run"] + 1}
    assert _snapshots(session, [suspended, terminated]) == snapshots
    if job == "announce-transitions":
        assert (
            first["announced"] + first["bars_expired"] == after_first["outbox_event"] - before["outbox_event"]
        )
        assert _types(outbox, suspended)[-1] == "eligibility.reinstated"
        assert _types(outbox, terminated)[-1] == "eligibility.bar_expired"
        assert second == NOTHING_TO_ANNOUNCE
    elif job == "roll-over-year":
        assert len(outbox(dedupe_key=f"year.rolled_over:{today.year}")) == 1
        assert second == {"announced": 0}
    elif job == "close-appeal-windows":
        assert first["closed"] == after_first["outbox_event"] - before["outbox_event"]
        assert _types(outbox, suspended)[-1] == "appeal.window_closed"
        assert _types(outbox, terminated)[-1] == "appeal.window_closed"
        assert second == {"checked": first["checked"], "closed": 0}
    elif job == "dispatch-webhooks":
        deliveries = reviewer.get(f"/v1/webhooks/{hook['id']}/deliveries")["items"]
        assert [(d["event_type"], d["status"], d["attempts"]) for d in deliveries] == [
            ("violation.recorded", "pending", 1)
        ]
        assert first["fanned_out"] >= 1 and first["retrying"] >= 1
        assert second == NOTHING_TO_DISPATCH  # the retry is not due yet at the same `now`
    else:
        assert first == {"mismatched": 1, "status_corrected": 0}
        assert second == {"mismatched": 0, "status_corrected": 0}
    assert after_second["outbox_event"] == after_first["outbox_event"]


# -- time-based transitions -----------------------------------------------------------------------


def test_a_suspension_announces_reinstated_once_on_its_end_date_and_nothing_before(
    admin, inspector, sweep, outbox
):
    person, _, sanction = _suspended(admin, inspector)
    end = dt.date.fromisoformat(sanction["end"])
    assert end == add_months(local_today(), 4)
    assert _types(outbox, person) == ["registration.created", "violation.recorded", "eligibility.suspended"]

    sweep("announce-transitions", today=end - dt.timedelta(days=1))
    assert _types(outbox, person)[-1] == "eligibility.suspended"

    sweep("announce-transitions", today=end)
    assert sweep("announce-transitions", today=end) == NOTHING_TO_ANNOUNCE
    sweep("announce-transitions", today=end + dt.timedelta(days=30))
    reinstated = outbox(subject=_subject(person), type="eligibility.reinstated")
    assert reinstated == [
        (
            "eligibility.reinstated",
            {
                "practitioner_code": person,
                "status": "active",
                "previous_status": "suspended",
                "on": end.isoformat(),
                "until": None,
                "barred_until": None,
                "reason": "registered and not suspended or terminated",
            },
        )
    ]
    assert len(outbox(dedupe_key=f"eligibility.reinstated:{person}:{end.isoformat()}")) == 1


def test_a_queued_suspension_hands_over_silently_and_announces_reinstated_once_at_the_end_of_the_chain(
    admin, inspector, sweep, outbox
):
    today = local_today()
    person, hospital = admin.person()
    # 8 + 1 = 9 points: 2 months; the tenth point tops up by 1 month, queued after the first
    inspector.violation(
        person, hospital, behaviour_code="B3-01", responsibility="important", decided_on=today.isoformat()
    )
    inspector.violation(person, hospital, behaviour_code="B1-01", decided_on=today.isoformat())
    inspector.violation(person, hospital, behaviour_code="B1-01", decided_on=today.isoformat())
    sanctions = admin.get(f"/v1/practitioners/{person}/standing", query={"year": today.year})["sanctions"]
    hand_over, end = add_months(today, 2), add_months(today, 3)
    assert [(s["start"], s["end"]) for s in sanctions] == [
        (today.isoformat(), hand_over.isoformat()),
        (hand_over.isoformat(), end.isoformat()),
    ]
    announced = _types(outbox, person)
    assert announced.count("eligibility.suspended") == 1

    for day in (hand_over - dt.timedelta(days=1), hand_over, end - dt.timedelta(days=1)):
        sweep("announce-transitions", today=day)
        assert _types(outbox, person) == announced, day  # still suspended: nothing to say
    sweep("announce-transitions", today=end)
    sweep("announce-transitions", today=end)
    assert _types(outbox, person) == [*announced, "eligibility.reinstated"]
    assert outbox(subject=_subject(person), type="eligibility.reinstated")[0][1]["on"] == end.isoformat()


def test_a_sweep_that_missed_the_end_date_catches_up_with_one_announcement(admin, inspector, sweep, outbox):
    person, _, sanction = _suspended(admin, inspector)
    late = dt.date.fromisoformat(sanction["end"]) + dt.timedelta(days=10)  # the scheduler was down
    sweep("announce-transitions", today=late)
    sweep("announce-transitions", today=late)
    sweep("announce-transitions", today=late + dt.timedelta(days=1))
    reinstated = outbox(subject=_subject(person), type="eligibility.reinstated")
    assert [data["on"] for _, data in reinstated] == [late.isoformat()]


def test_a_termination_bar_expiry_is_announced_once_when_today_reaches_barred_until(
    admin, inspector, sweep, outbox
):
    person, sanction = _terminated(admin, inspector)
    barred_until = dt.date.fromisoformat(sanction["barred_until"])
    assert _types(outbox, person) == [
        "registration.created",
        "violation.recorded",
        "registration.ended",
        "eligibility.terminated",
    ]

    sweep("announce-transitions", today=barred_until - dt.timedelta(days=1))
    assert outbox(subject=_subject(person), type="eligibility.bar_expired") == []

    far = add_years(local_today(), 4)
    sweep("announce-transitions", today=far)
    sweep("announce-transitions", today=far)
    sweep("announce-transitions", today=far + dt.timedelta(days=365))
    assert outbox(subject=_subject(person), type="eligibility.bar_expired") == [
        (
            "eligibility.bar_expired",
            {"practitioner_code": person, "barred_until": barred_until.isoformat()},
        )
    ]
    # the bar expiring allows a new registration; it does not reinstate anyone by itself
    assert _types(outbox, person)[-1] == "eligibility.bar_expired"
    assert "eligibility.reinstated" not in _types(outbox, person)


# -- the year boundary ----------------------------------------------------------------------------


def _job_runs(session, job: str) -> list[tuple[dt.date, dict]]:
    return [
        (r.today, r.detail)
        for r in session.scalars(select(JobRun).where(JobRun.job == job).order_by(JobRun.id))
    ]


def test_the_last_second_of_2026_in_shanghai_announces_2026_and_the_first_second_of_2027_announces_2027(
    admin, inspector, sweep, outbox, session
):
    person, hospital = admin.person()
    inspector.violation(person, hospital, behaviour_code="B2-01", decided_on="2026-06-10")
    standing_2026 = admin.get(f"/v1/practitioners/{person}/standing", query={"year": 2026})
    assert standing_2026["points_total"] == 4
    ledger = session.scalar(select(func.count()).select_from(LedgerEntry))
    existing_2027 = len(outbox(dedupe_key="year.rolled_over:2027"))
    runs_before = len(_job_runs(session, "roll-over-year"))

    last_second = dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=SHANGHAI)  # 15:59:59 UTC
    first_second = dt.datetime(2027, 1, 1, 0, 0, 0, tzinfo=SHANGHAI)  # still 2026-12-31 in UTC
    sweep("roll-over-year", now=last_second)
    assert len(outbox(dedupe_key="year.rolled_over:2027")) == existing_2027
    assert outbox(dedupe_key="year.rolled_over:2026") == [
        ("year.rolled_over", {"year": 2026, "previous_year": 2025})
    ]
    assert sweep("roll-over-year", now=first_second) == {"announced": 1 - existing_2027}
    assert sweep("roll-over-year", now=first_second) == {"announced": 0}
    assert sweep("roll-over-year", now=first_second + dt.timedelta(hours=6)) == {"announced": 0}
    assert outbox(dedupe_key="year.rolled_over:2027") == [
        ("year.rolled_over", {"year": 2027, "previous_year": 2026})
    ]
    assert [today for today, _ in _job_runs(session, "roll-over-year")[runs_before:]] == [
        dt.date(2026, 12, 31),
        dt.date(2027, 1, 1),
        dt.date(2027, 1, 1),
        dt.date(2027, 1, 1),
    ]
    # the reset is arithmetic by score year: nothing deleted, 2026 unchanged, 2027 starts at zero
    assert session.scalar(select(func.count()).select_from(LedgerEntry)) == ledger
    assert admin.get(f"/v1/practitioners/{person}/standing", query={"year": 2026}) == standing_2026
    standing_2027 = admin.get(f"/v1/practitioners/{person}/standing", query={"year": 2027})
    assert (standing_2027["points_total"], standing_2027["tier"], standing_2027["measures"]) == (
        0,
        "none",
        [],
    )


def test_the_first_roll_over_run_in_any_year_announces_that_year(sweep, outbox):
    today = local_today()
    sweep("roll-over-year", today=today)
    assert outbox(dedupe_key=f"year.rolled_over:{today.year}") == [
        ("year.rolled_over", {"year": today.year, "previous_year": today.year - 1})
    ]
    assert sweep("roll-over-year", today=today) == {"announced": 0}


# -- appeal windows -------------------------------------------------------------------------------


def test_an_appeal_window_closing_is_announced_once_and_never_for_an_appealed_decision(
    client, session, admin, inspector, rt, sweep, outbox
):
    today = local_today()
    quiet, hospital = admin.person()
    quiet_violation = inspector.violation(
        quiet, hospital, behaviour_code="B2-01", decided_on=today.isoformat()
    )
    appellant, other = admin.person()
    appealed = inspector.violation(appellant, other, behaviour_code="B2-01", decided_on=today.isoformat())
    own = Api(client, make_key(session, "practitioner", practitioner_code=appellant))
    own.post(f"/v1/violations/{appealed['id']}/appeals", {"reason": "I was on leave that week"})
    window = appeal_window(today, WORKING_DAYS, rt.settings.calendar)

    sweep("close-appeal-windows", today=window.deadline)
    assert outbox(type="appeal.window_closed", subject=_subject(quiet)) == []

    sweep("close-appeal-windows", today=window.deadline + dt.timedelta(days=1))
    sweep("close-appeal-windows", today=window.deadline + dt.timedelta(days=1))
    sweep("close-appeal-windows", today=window.deadline + dt.timedelta(days=7))
    assert outbox(type="appeal.window_closed", subject=_subject(quiet)) == [
        (
            "appeal.window_closed",
            {
                "violation_id": quiet_violation["id"],
                "practitioner_code": quiet,
                "deadline": window.deadline.isoformat(),
                "deadline_estimated": window.estimated,
            },
        )
    ]
    assert outbox(type="appeal.window_closed", subject=_subject(appellant)) == []
    assert len(outbox(dedupe_key=f"appeal.window_closed:{quiet_violation['id']}")) == 1


# -- interrupted and re-run -----------------------------------------------------------------------


def test_a_sweep_interrupted_mid_way_rolls_back_and_the_rerun_announces_everything_exactly_once(
    admin, inspector, sweep, outbox, counts, session, monkeypatch
):
    first, _, _ = _suspended(admin, inspector)
    second, _, _ = _suspended(admin, inspector)
    barred, _ = _terminated(admin, inspector)
    persons = [first, second, barred]
    announced_before = {p: _types(outbox, p) for p in persons}
    snapshots = _snapshots(session, persons)
    far = add_years(local_today(), 4)
    real_emit = events_module.emit
    calls = []

    def crash_after_the_first(*args, **kwargs):
        calls.append(args[1])
        if len(calls) > 1:
            raise RuntimeError("the process died mid-sweep")
        return real_emit(*args, **kwargs)

    monkeypatch.setattr(events_module, "emit", crash_after_the_first)
    before = counts()
    with pytest.raises(RuntimeError, match="mid-sweep"):
        sweep("announce-transitions", today=far)
    assert len(calls) == 2  # one announcement was written before the crash ...
    assert counts() == before  # ... and rolled back with everything else, job_run included
    assert {p: _types(outbox, p) for p in persons} == announced_before
    assert _snapshots(session, persons) == snapshots

    monkeypatch.setattr(events_module, "emit", real_emit)
    sweep("announce-transitions", today=far)
    assert sweep("announce-transitions", today=far) == NOTHING_TO_ANNOUNCE
    assert _types(outbox, first) == [*announced_before[first], "eligibility.reinstated"]
    assert _types(outbox, second) == [*announced_before[second], "eligibility.reinstated"]
    assert _types(outbox, barred) == [*announced_before[barred], "eligibility.bar_expired"]


def test_an_announcement_failing_while_the_plan_is_applied_rolls_the_whole_sweep_back(
    admin, inspector, sweep, outbox, counts, monkeypatch
):
    from points_service.services import state

    person, _, sanction = _suspended(admin, inspector)
    end = dt.date.fromisoformat(sanction["end"])

    def broken(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(state.events, "emit", broken)
    before = counts()
    with pytest.raises(RuntimeError, match="killed"):
        sweep("announce-transitions", today=end)
    assert counts() == before
    monkeypatch.undo()
    sweep("announce-transitions", today=end)
    assert _types(outbox, person)[-1] == "eligibility.reinstated"
    assert sweep("announce-transitions", today=end) == NOTHING_TO_ANNOUNCE


# -- job_run --------------------------------------------------------------------------------------


def test_every_run_records_one_job_run_row_with_its_day_and_result(sweep, session):
    today = local_today()
    now = utc_now()
    start = session.scalar(select(func.max(JobRun.id))) or 0
    results = {name: sweep(name, today=today, now=now) for name in SWEEP_DAYS}
    runs = session.scalars(select(JobRun).where(JobRun.id > start).order_by(JobRun.id)).all()
    assert [(r.job, r.today, r.outcome, r.detail) for r in runs] == [
        (name, today, "ok", results[name]) for name in SWEEP_DAYS
    ]
    assert all(r.started_at == now and r.finished_at == now for r in runs)


# -- the command line -----------------------------------------------------------------------------


def test_jobs_run_on_the_command_line_prints_json_counts_and_a_rerun_announces_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade_database(url)
    runner = CliRunner(env={"POINTS_DATABASE_URL": url})

    first = runner.invoke(main, ["jobs", "run", "roll-over-year", "--today", "2026-01-01"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == {"announced": 1}
    second = runner.invoke(main, ["jobs", "run", "roll-over-year", "--today", "2026-01-01"])
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout) == {"announced": 0}
    transitions = runner.invoke(main, ["jobs", "run", "announce-transitions", "--today", "2026-01-01"])
    assert json.loads(transitions.stdout) == NOTHING_TO_ANNOUNCE

    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(select(OutboxEvent.type, OutboxEvent.dedupe_key, OutboxEvent.data)).all() == [
            ("year.rolled_over", "year.rolled_over:2026", {"year": 2026, "previous_year": 2025})
        ]
        assert conn.execute(select(JobRun.job, JobRun.today).order_by(JobRun.id)).all() == [
            ("roll-over-year", dt.date(2026, 1, 1)),
            ("roll-over-year", dt.date(2026, 1, 1)),
            ("announce-transitions", dt.date(2026, 1, 1)),
        ]
        assert conn.execute(select(func.count()).select_from(Practitioner)).scalar() == 0
    engine.dispose()


def test_jobs_run_refuses_an_unknown_job_and_a_malformed_day(tmp_path):
    runner = CliRunner(env={"POINTS_DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}"})
    unknown = runner.invoke(main, ["jobs", "run", "purge-everything"])
    assert unknown.exit_code == 2 and "purge-everything" in unknown.output
    bad_day = runner.invoke(main, ["jobs", "run", "roll-over-year", "--today", "31/12/2026"])
    assert bad_day.exit_code == 2
