"""Importing scoring decisions: every row checked as POST /v1/violations checks a decision, in its
words and with its line; a bad file imports nothing; a case recorded before is skipped or refused
by its content; and the people scored end as if the decisions had been posted in decision order,
with one event per decision and only today's eligibility changes in the feed."""

from __future__ import annotations

import uuid
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import func, select

from points_service.persistence.models import (
    AuditEvent,
    LedgerEntry,
    Measure,
    OutboxEvent,
    Practitioner,
    PractitionerState,
    Violation,
)
from points_service.rules import standing as rules
from points_service.rules.snapshot import state_from_mapping, state_to_mapping
from points_service.services.state import derive
from points_service.settings import load_policy_set

HEADER = "case_ref,practitioner_code,institution_code,behaviour_code,responsibility,occurred_on,decided_on"
OPTIONAL = ",points,adjustment,adjustment_reason,description"


def _file(tmp_path: Path, rows: list[str], *, header: str = HEADER + OPTIONAL, name: str = "") -> Path:
    path = tmp_path / (name or f"{uuid.uuid4().hex[:6]}.csv")
    path.write_text("\n".join([header, *rows]) + "\n", "utf-8")
    return path


def _row(
    case: str, person: str, place: str, decided: str, behaviour="B1-01", responsibility="general", *rest
):
    occurred = rest[0] if rest and rest[0] else decided
    optional = list(rest[1:]) + [""] * (4 - len(rest[1:]))
    return ",".join([case, person, place, behaviour, responsibility, occurred, decided, *optional])


def _bad_lines(stderr: str) -> dict[int, str]:
    return {
        int(line.split(":")[0].removeprefix("line ")): line.split(": ", 1)[1]
        for line in stderr.splitlines()
        if line.startswith("line ")
    }


def _decisions(sessions, case_prefix: str) -> int:
    with sessions() as s:
        return s.scalar(
            select(func.count()).select_from(Violation).where(Violation.case_ref.like(f"{case_prefix}%"))
        )


def _person_id(sessions, code: str) -> int:
    with sessions() as s:
        return s.scalar(select(Practitioner.id).where(Practitioner.code == code))


def _events(sessions, code: str) -> list[OutboxEvent]:
    with sessions() as s:
        pid = s.scalar(select(Practitioner.id).where(Practitioner.code == code))
        return list(
            s.scalars(select(OutboxEvent).where(OutboxEvent.practitioner_id == pid).order_by(OutboxEvent.id))
        )


def test_a_file_with_one_bad_row_imports_no_decision(cli, api, sessions, tmp_path, tag):
    admin = api("admin")
    person, hospital = admin.person(start="2025-01-01")
    path = _file(
        tmp_path,
        [
            _row(f"{tag}-1", person, hospital, "2026-03-01"),
            _row(f"{tag}-2", person, hospital, "2026-03-02", "B9-99"),  # 3: unknown behaviour
            _row(f"{tag}-3", person, hospital, "2026-03-03", "B1-01", "main"),
        ],
    )
    refused = cli("import", "violations", str(path))
    assert refused.exit_code == 1
    assert _bad_lines(refused.stderr) == {3: "behaviour_code: unknown behaviour code 'B9-99'"}
    assert _decisions(sessions, tag) == 0
    done = cli("import", "violations", str(path), "--skip-bad")
    assert done.exit_code == 0, done.output
    assert "imported 2 violations" in done.stdout and "skipped 1 bad row(s)" in done.stdout
    assert _decisions(sessions, tag) == 2
    with sessions() as s:
        pid = _person_id(sessions, person)
        snapshot = s.get(PractitionerState, pid)
        assert snapshot.ledger_version == 2
        assert snapshot.state == state_to_mapping(derive(s, s.get(Practitioner, pid), load_policy_set()))
        assert state_from_mapping(snapshot.state).year(2026).points_recorded == 4
        audit = s.scalars(select(AuditEvent).where(AuditEvent.actor == f"import:{path.name}")).all()
        assert [(a.action, a.detail["rows"], a.detail["skipped"]) for a in audit] == [
            ("import.violations", 2, 1)
        ]


def test_a_rerun_of_the_same_file_records_nothing_twice(cli, api, sessions, tmp_path, tag):
    admin = api("admin")
    person, hospital = admin.person(start="2025-01-01")
    rows = [_row(f"{tag}-{n}", person, hospital, f"2026-0{n}-01") for n in (1, 2, 3)]
    path = _file(tmp_path, [*rows, rows[0]])  # the first case repeated in the file: one decision
    first = cli("import", "violations", str(path))
    assert first.exit_code == 0, first.output
    assert "imported 3 violations" in first.stdout and "1 already there" in first.stdout
    events = len(_events(sessions, person))
    again = cli("import", "violations", str(path))
    assert again.exit_code == 0, again.output
    assert "imported 0 violations" in again.stdout and "4 already there, skipped" in again.stdout
    assert _decisions(sessions, tag) == 3
    assert len(_events(sessions, person)) == events
    with sessions() as s:
        assert s.get(PractitionerState, _person_id(sessions, person)).ledger_version == 3


def test_a_case_ref_stored_with_other_content_is_a_bad_row(cli, api, sessions, tmp_path, tag):
    admin, inspector = api("admin"), api("inspector")
    person, hospital = admin.person(start="2025-01-01")
    inspector.violation(person, hospital, case_ref=f"{tag}-1", decided_on="2026-02-01")
    answer = inspector.violation(person, hospital, case_ref=f"{tag}-1", decided_on="2026-02-02", status=409)
    path = _file(
        tmp_path,
        [
            _row(f"{tag}-1", person, hospital, "2026-02-01"),  # 2: as posted: skipped
            _row(f"{tag}-1", person, hospital, "2026-02-02"),  # 3: other content
            _row(f"{tag}-2", person, hospital, "2026-02-03"),  # 4
            _row(f"{tag}-2", person, hospital, "2026-02-04"),  # 5: other content than line 4
        ],
    )
    result = cli("import", "violations", str(path))
    assert result.exit_code == 1
    assert _bad_lines(result.stderr) == {
        3: f"case_ref: {answer['detail']}",
        5: f"case_ref: case {tag}-2 is on line 4 with different content",
    }
    assert "1 already there" in result.stderr
    assert _decisions(sessions, tag) == 1


def test_a_value_the_api_refuses_the_import_refuses_in_its_words_with_the_line(cli, api, tmp_path, tag):
    admin, inspector = api("admin"), api("inspector")
    person, hospital = admin.person(start="2025-06-01")
    stranger = admin.practitioner()
    good = {
        "case_ref": f"{tag}-V",
        "practitioner_code": person,
        "institution_code": hospital,
        "behaviour_code": "B1-01",
        "responsibility": "general",
        "occurred_on": "2026-03-01",
        "decided_on": "2026-03-01",
    }
    cases = [
        ({"behaviour_code": "B1-01-TOO-LONG-CODE"}, "behaviour_code"),
        ({"behaviour_code": "B7-01"}, "behaviour_code"),
        ({"responsibility": "chief"}, "responsibility"),
        ({"points": 13}, "points"),
        ({"points": 9}, "points"),
        ({"adjustment": "lenient"}, "adjustment"),
        ({"adjustment": "mitigated", "points": 1}, "adjustment_reason"),
        ({"adjustment_reason": "why not"}, "adjustment_reason"),
        ({"occurred_on": "2026-03-02"}, "occurred_on"),
        ({"decided_on": "2999-01-01", "occurred_on": "2999-01-01"}, "decided_on"),
        ({"decided_on": "2026-02-30"}, "decided_on"),
        ({"occurred_on": "2025-05-31"}, "occurred_on"),  # before the registration
        ({"practitioner_code": stranger}, "occurred_on"),  # never registered there
        ({"institution_code": f"{tag}NOWHERE"}, "institution_code"),
        ({"practitioner_code": f"{tag}NOBODY"}, "practitioner_code"),
    ]
    rows, expected = [], {}
    for number, (change, field) in enumerate(cases):
        body = {**good, **change, "case_ref": f"{tag}-V{number}"}
        said = inspector.post("/v1/violations", body, status=422)["errors"][field]
        assert len(said) == 1, said
        values = [str(body.get(c, "")) for c in (HEADER + OPTIONAL).split(",")]
        rows.append(",".join(values))
        expected[number + 2] = f"{field}: {said[0]}"
    result = cli("import", "violations", str(_file(tmp_path, rows)))
    assert result.exit_code == 1
    assert _bad_lines(result.stderr) == expected


def _normal(state: rules.PersonState, order: dict[int, int]) -> tuple:
    """A state with its decisions named by their place in the list, not their ids."""

    def renamed(items):
        return [msgspec.structs.replace(item, violation_id=order[item.violation_id]) for item in items]

    return (
        state.years,
        renamed(state.measures),
        renamed(state.suspensions),
        renamed(state.terminations),
        [order[v] for v in state.decisions],
        [(s.institution_code, s.start, s.end, s.ended_by) for s in state.registrations],
    )


DECISIONS = [  # (decided_on, behaviour, responsibility, points, adjustment, reason)
    ("2025-02-10", "B1-01", "general", "", "", ""),
    ("2025-02-10", "B1-01", "main", "", "", ""),  # the same day: the file's order decides
    ("2025-05-01", "B2-01", "important", "", "", ""),  # 9 in the year: a suspension
    ("2026-03-01", "B1-01", "important", "", "", ""),
    ("2026-06-01", "B1-01", "general", "", "", ""),  # 3 in the year: an institution talk
    ("2026-07-01", "B2-01", "important", "2", "mitigated", "cooperated fully"),  # 5: an agency talk
]


def test_imported_decisions_give_the_same_standing_as_posted_ones(cli, api, sessions, tmp_path, tag):
    admin, inspector = api("admin"), api("inspector")
    posted, hospital = admin.person(start="2025-01-01")
    imported = admin.practitioner()
    admin.register(imported, hospital, "2025-01-01")
    posted_order = {}
    for n, (decided, behaviour, responsibility, points, adjustment, reason) in enumerate(DECISIONS):
        extra = {"adjustment": adjustment, "adjustment_reason": reason} if adjustment else {}
        answer = inspector.violation(
            posted,
            hospital,
            case_ref=f"{tag}-P-{n}",
            decided_on=decided,
            behaviour_code=behaviour,
            responsibility=responsibility,
            points=int(points) if points else None,
            **extra,
        )
        posted_order[answer["id"]] = n
    rows = [
        _row(
            f"{tag}-I-{n}",
            imported,
            hospital,
            decided,
            behaviour,
            responsibility,
            "",
            points,
            adjustment,
            reason,
        )
        for n, (decided, behaviour, responsibility, points, adjustment, reason) in enumerate(DECISIONS)
    ]
    # the file is not in decision order, but of the two decisions of one day the first comes first
    rows = [rows[2], rows[5], rows[0], rows[4], rows[1], rows[3]]
    result = cli("import", "violations", str(_file(tmp_path, rows)))
    assert result.exit_code == 0, result.output
    with sessions() as s:
        ids = {c: _person_id(sessions, c) for c in (posted, imported)}
        imported_order = {
            v.id: int(v.case_ref.rsplit("-", 1)[1])
            for v in s.scalars(select(Violation).where(Violation.practitioner_id == ids[imported]))
        }
        snapshots = {c: s.get(PractitionerState, pid) for c, pid in ids.items()}
        states = {c: state_from_mapping(snap.state) for c, snap in snapshots.items()}
        assert _normal(states[imported], imported_order) == _normal(states[posted], posted_order)
        assert states[posted].suspensions and len(states[posted].measures) >= 2
        assert snapshots[imported].announced_status == snapshots[posted].announced_status
        assert snapshots[imported].next_transition_on == snapshots[posted].next_transition_on
        assert snapshots[imported].ledger_version == snapshots[posted].ledger_version == len(DECISIONS)

        def tasks(pid: int, order: dict[int, int]):
            measures = s.scalars(select(Measure).where(Measure.practitioner_id == pid).order_by(Measure.id))
            return [(m.kind, m.year, m.triggered_on, m.state, order[m.violation_id]) for m in measures]

        assert tasks(ids[imported], imported_order) == tasks(ids[posted], posted_order)
        entries = s.scalars(
            select(LedgerEntry).where(LedgerEntry.practitioner_id == ids[imported]).order_by(LedgerEntry.id)
        )
        assert [imported_order[e.violation_id] for e in entries] == list(range(len(DECISIONS)))
    posted_answer = admin.get(f"/v1/practitioners/{posted}/eligibility")
    imported_answer = admin.get(f"/v1/practitioners/{imported}/eligibility")
    assert {k: v for k, v in imported_answer.items() if k != "practitioner_code"} == {
        k: v for k, v in posted_answer.items() if k != "practitioner_code"
    }


def test_the_feed_gets_one_event_per_decision_and_only_todays_eligibility_change(
    cli, api, sessions, tmp_path, tag
):
    admin, inspector = api("admin"), api("inspector")
    now_suspended, hospital = admin.person(start="2025-01-01")
    was_suspended = admin.practitioner()
    admin.register(was_suspended, hospital, "2025-01-01")
    rows = [
        _row(f"{tag}-1", now_suspended, hospital, "2025-03-01", "B3-01", "main"),  # 9: 4 months, long over
        _row(f"{tag}-2", now_suspended, hospital, "2026-11-20", "B3-01", "main"),  # 9: 4 months from Nov 20
        _row(f"{tag}-3", was_suspended, hospital, "2025-03-01", "B3-01", "main"),
    ]
    before = {c: len(_events(sessions, c)) for c in (now_suspended, was_suspended)}
    result = cli("import", "violations", str(_file(tmp_path, rows)))
    assert result.exit_code == 0, result.output
    feed = {c: _events(sessions, c)[before[c] :] for c in (now_suspended, was_suspended)}
    assert [e.type for e in feed[was_suspended]] == ["violation.recorded"]
    assert [e.type for e in feed[now_suspended]] == [
        "violation.recorded",
        "violation.recorded",
        "eligibility.suspended",
    ]
    suspended = feed[now_suspended][-1].data
    assert (suspended["previous_status"], suspended["until"]) == ("active", "2027-03-20")
    # a decision's event says what the API's says of it
    posted = inspector.violation(was_suspended, hospital, case_ref=f"{tag}-4", decided_on="2025-04-01")
    recorded = _events(sessions, was_suspended)[-1]
    assert recorded.type == "violation.recorded"
    first = feed[was_suspended][0]
    assert set(first.data) == set(recorded.data)
    assert first.data["link"] == f"/v1/violations/{first.data['violation_id']}"
    assert (first.subject, first.institution_id) == (recorded.subject, recorded.institution_id)
    assert recorded.data["violation_id"] == posted["id"]


def test_a_decision_after_a_termination_in_the_same_file_is_refused_as_the_api_would(
    cli, api, sessions, tmp_path, tag
):
    admin, inspector = api("admin"), api("inspector")
    posted, hospital = admin.person(start="2025-01-01")
    inspector.violation(
        posted, hospital, decided_on="2026-03-01", behaviour_code="B4-01", responsibility="main"
    )
    said = inspector.violation(
        posted, hospital, decided_on="2026-04-01", occurred_on="2026-03-15", status=422
    )["errors"]["occurred_on"]
    imported = admin.practitioner()
    admin.register(imported, hospital, "2025-01-01")
    rows = [
        _row(f"{tag}-2", imported, hospital, "2026-04-01", "B1-01", "general", "2026-03-15"),  # 2: after it
        _row(f"{tag}-1", imported, hospital, "2026-03-01", "B4-01", "main"),  # 3: 12 points, terminated
        _row(f"{tag}-0", imported, hospital, "2026-04-01", "B1-01", "general", "2026-02-15"),  # 4: before it
    ]
    result = cli("import", "violations", str(_file(tmp_path, rows)))
    assert result.exit_code == 1
    assert _bad_lines(result.stderr) == {2: f"occurred_on: {said[0].replace(posted, imported)}"}
    done = cli("import", "violations", str(_file(tmp_path, rows)), "--skip-bad")
    assert done.exit_code == 0, done.output
    assert _decisions(sessions, tag) == 2
    with sessions() as s:
        snapshot = s.get(PractitionerState, _person_id(sessions, imported))
        assert snapshot.announced_status == "terminated"


def test_dry_run_checks_the_decisions_and_writes_nothing(cli, api, sessions, tmp_path, tag):
    admin = api("admin")
    person, hospital = admin.person(start="2025-01-01")
    required_only = ",".join(_row(f"{tag}-1", person, hospital, "2026-03-01").split(",")[:7])
    path = _file(tmp_path, [required_only], header=HEADER)
    result = cli("import", "violations", str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run: 1 violations" in result.stdout
    assert _decisions(sessions, tag) == 0


def test_the_status_line_goes_through_the_check_and_then_the_write(api, sessions, tmp_path, tag):
    from points_service.clock import utc_now
    from points_service.persistence.engine import transaction
    from points_service.persistence.pii import PiiKeys
    from points_service.services.imports import ImportOptions, import_csv
    from points_service.settings import DEV_ENCRYPTION_KEYS, DEV_INDEX_KEY

    admin = api("admin")
    person, hospital = admin.person(start="2025-01-01")
    other = admin.practitioner()
    admin.register(other, hospital, "2025-01-01")
    rows = [_row(f"{tag}-{n}", (person, other)[n % 2], hospital, f"2026-0{n + 1}-01") for n in range(5)]
    path = _file(tmp_path, rows)
    told: list[tuple[str, int, int]] = []
    with transaction(sessions, write=True) as session:
        report = import_csv(
            session,
            "violations",
            path,
            keys=PiiKeys.from_settings(DEV_ENCRYPTION_KEYS, DEV_INDEX_KEY),
            policies=load_policy_set(),
            now=utc_now(),
            options=ImportOptions(progress=lambda *said: told.append(said)),
        )
    assert report.rows == 5
    size = path.stat().st_size
    assert [t for t in told if t[0] == "checking"][-1] == ("checking", size, 6)
    assert [t for t in told if t[0] == "writing"] == [("writing", size, 6)]
    assert [t[0] for t in told].index("writing") > [t[0] for t in told].index("checking")


@pytest.mark.postgresql
@pytest.mark.parametrize("kind", ["violations", "registrations"])
def test_the_people_a_file_names_are_locked_as_a_posted_decision_locks_them(
    api, sessions, engine, tmp_path, tag, kind
):
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from points_service.clock import utc_now
    from points_service.persistence.engine import transaction
    from points_service.persistence.pii import PiiKeys
    from points_service.services.imports import ImportOptions, import_csv
    from points_service.settings import DEV_ENCRYPTION_KEYS, DEV_INDEX_KEY

    admin = api("admin")
    person, hospital = admin.person(start="2025-01-01")
    bystander = admin.practitioner()
    if kind == "violations":
        path = _file(tmp_path, [_row(f"{tag}-1", person, hospital, "2026-03-01")])
    else:
        path = tmp_path / "registrations.csv"
        path.write_text(
            f"practitioner_code,institution_code,start_date\n{person},{admin.institution()},2026-01-01\n"
        )
    keys = PiiKeys.from_settings(DEV_ENCRYPTION_KEYS, DEV_INDEX_KEY)

    def locked(code: str) -> bool:
        # NO KEY UPDATE waits for FOR UPDATE, the lock of a posted decision, and not for the key
        # share lock that writing a row which refers to the person takes
        with engine.connect() as other:
            try:
                other.execute(text("SET lock_timeout = '100ms'"))
                other.execute(
                    text("SELECT id FROM practitioner WHERE code = :c FOR NO KEY UPDATE"), {"c": code}
                )
            except OperationalError:
                return True
            finally:
                other.rollback()
        return False

    for dry_run in (True, False):
        with transaction(sessions, write=not dry_run) as session:
            import_csv(
                session,
                kind,
                path,
                keys=keys,
                policies=load_policy_set(),
                now=utc_now(),
                options=ImportOptions(dry_run=dry_run),
            )
            assert (locked(person), locked(bystander)) == (not dry_run, False)


@pytest.mark.postgresql
def test_a_case_the_api_records_while_the_file_is_imported_refuses_the_file_naming_its_line(
    cli, api, sessions, engine, tmp_path, tag
):
    import threading
    import time

    from sqlalchemy import text

    admin, inspector = api("admin"), api("inspector")
    person, hospital = admin.person(start="2025-01-01")
    other, elsewhere = admin.person(start="2025-01-01")
    inspector.violation(other, elsewhere, case_ref=f"{tag}-0", decided_on="2026-02-01")
    path = _file(
        tmp_path,
        [_row(f"{tag}-1", person, hospital, "2026-03-01"), _row(f"{tag}-2", person, hospital, "2026-03-02")],
    )
    # another writer records case 1 (for another person, so the import's locks do not stop it)
    # and commits only once the import's COPY waits on that case_ref's unique index entry
    columns = [c.name for c in Violation.__table__.columns if c.name not in ("id", "case_ref")]
    with engine.connect() as writer:
        writer.execute(
            text(
                f"INSERT INTO violation (case_ref, {', '.join(columns)}) "
                f"SELECT :ref, {', '.join(columns)} FROM violation WHERE case_ref = :seed"
            ),
            {"ref": f"{tag}-1", "seed": f"{tag}-0"},
        )
        outcome = {}
        importing = threading.Thread(
            target=lambda: outcome.update(result=cli("import", "violations", str(path)))
        )
        importing.start()
        # autocommit: within a transaction pg_stat_activity would show its first snapshot throughout
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher:
            for _ in range(200):
                waiting = watcher.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'"
                    )
                )
                if waiting:
                    break
                time.sleep(0.05)
        assert waiting, "the import never waited for the other writer's case_ref"
        writer.commit()
    importing.join(timeout=60)
    result = outcome["result"]
    assert result.exit_code == 1
    assert _bad_lines(result.stderr) == {
        2: f"case_ref {tag}-1 was recorded by another writer while this file was imported; "
        "run the import again (a case stored with the same content is skipped)"
    }
    assert "nothing imported" in result.stderr.splitlines()[-1]
    # the other writer's case stands, the file's second case was not written either
    assert _decisions(sessions, f"{tag}-") == 2
    with sessions() as s:
        assert (
            s.scalar(select(func.count()).select_from(Violation).where(Violation.case_ref == f"{tag}-2")) == 0
        )
