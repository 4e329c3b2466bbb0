"""Bulk data: CSV imports check every row as the API would and report bad ones by line number,
import nothing from a bad file unless told to skip, and leave the same rows, snapshots and events
the API would; `demo seed` writes a ledger whose snapshots equal the rules recomputed from it."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

from click.testing import CliRunner
from databases import fresh_database_url
from factories import auth, make_key
from sqlalchemy import func, select

from points_service import create_app
from points_service.cli import main
from points_service.clock import utc_now
from points_service.demo import seed_demo
from points_service.persistence.engine import make_engine, make_sessionmaker, transaction
from points_service.persistence.models import (
    AuditEvent,
    Institution,
    LedgerEntry,
    Measure,
    OutboxEvent,
    Practitioner,
    PractitionerState,
    Registration,
    Violation,
)
from points_service.persistence.pii import PiiKeys, blind_index, decrypt_national_id
from points_service.persistence.schema import upgrade_database
from points_service.rules import standing as rules
from points_service.rules.calendar import local_date
from points_service.rules.identifiers import with_check_character
from points_service.rules.snapshot import state_to_mapping
from points_service.services.imports.practitioners import national_id_cipher, national_id_index
from points_service.services.state import derive
from points_service.settings import DEV_ENCRYPTION_KEYS, DEV_INDEX_KEY, Settings, load_policy_set

KEYS = PiiKeys.from_settings(DEV_ENCRYPTION_KEYS, DEV_INDEX_KEY)


def _csv(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def _bad_lines(stderr: str) -> dict[int, str]:
    return {
        int(line.split(":")[0].removeprefix("line ")): line
        for line in stderr.splitlines()
        if line.startswith("line ")
    }


def _id(n: int) -> str:
    return with_check_character(f"130102{1950 + n // 1000:04d}0101{n % 1000:03d}")


def _count(sessions, model, column, prefix: str) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(column.like(f"{prefix}%")))


def test_institutions_with_bad_rows_import_nothing_then_skip_bad_imports_the_good(
    cli, sessions, tmp_path, tag
):
    path = _csv(
        tmp_path,
        "institutions.csv",
        [
            "code,name,kind,region_code",
            f"{tag}A,Hospital A,medical_institution,130100",  # 2
            f"{tag}B,Pharmacy B,retail_pharmacy,1301X0",  # 3: region code
            f"{tag}A,Hospital A again,medical_institution,130100",  # 4: duplicate code
            f"{tag}C,Clinic C,clinic,630100",  # 5: kind
            f'{tag}D,"西宁市第一人民医院, 东院",medical_institution,630102',  # 6
            "",
            f"{tag} E,Spaced,medical_institution,110105",  # 8: code
        ],
    )
    refused = cli("import", "institutions", str(path))
    assert refused.exit_code == 1
    bad = _bad_lines(refused.stderr)
    assert sorted(bad) == [3, 4, 5, 8]
    assert "region_code" in bad[3] and "duplicate code" in bad[4] and "line 2" in bad[4]
    assert "unknown kind 'clinic'" in bad[5]
    assert "nothing imported" in refused.stderr
    assert _count(sessions, Institution, Institution.code, tag) == 0

    done = cli("import", "institutions", str(path), "--skip-bad")
    assert done.exit_code == 0, done.output
    assert sorted(_bad_lines(done.stderr)) == [3, 4, 5, 8]
    assert "imported 2 institutions" in done.stdout and "skipped 4" in done.stdout
    with sessions() as s:
        rows = {i.code: i for i in s.scalars(select(Institution).where(Institution.code.like(f"{tag}%")))}
        assert set(rows) == {f"{tag}A", f"{tag}D"}
        assert rows[f"{tag}D"].name == "西宁市第一人民医院, 东院" and rows[f"{tag}D"].region_code == "630102"
        audit = s.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "import.institutions")
            .order_by(AuditEvent.id.desc())
        ).first()
        assert audit.detail == {"file": "institutions.csv", "rows": 2, "skipped": 4, "existing": 0}

    again = cli("import", "institutions", str(path))  # every good row now exists
    assert again.exit_code == 1
    assert "already exists" in _bad_lines(again.stderr)[2]


def test_practitioners_with_bad_rows_import_nothing_then_skip_bad_imports_the_good(
    cli, sessions, tmp_path, tag
):
    good_a, good_b, dup = _id(1001), _id(1002), _id(1003)
    bad_check = _id(1004)[:-1] + ("0" if _id(1004)[-1] != "0" else "1")
    path = _csv(
        tmp_path,
        "people.csv",
        [
            "code,name,id_number,category",
            f"{tag}P1,张伟,{good_a},physician",  # 2
            f"{tag}P2,李娜,{bad_check},nurse",  # 3: check digit
            f"{tag}P3,王芳,{_id(1005)},doctor",  # 4: category
            f'{tag}P4,"Smith, Anna",{good_b.lower()} ,pharmacist',  # 5 (x lower-case and spaces are fine)
            f"{tag}P1,赵敏,{dup},nurse",  # 6: duplicate code
            f"{tag}P6,周杰,{good_a},technician",  # 7: same national ID as line 2
        ],
    )
    refused = cli("import", "practitioners", str(path))
    assert refused.exit_code == 1
    bad = _bad_lines(refused.stderr)
    assert sorted(bad) == [3, 4, 6, 7]
    assert "check digit" in bad[3] and "unknown category 'doctor'" in bad[4]
    assert "duplicate code" in bad[6] and "line 2" in bad[7]
    assert bad_check not in refused.stderr and good_a not in refused.stderr  # never the number
    assert _count(sessions, Practitioner, Practitioner.code, tag) == 0
    assert _count(sessions, PractitionerState, PractitionerState.practitioner_code, tag) == 0

    done = cli("import", "practitioners", str(path), "--skip-bad")
    assert done.exit_code == 0, done.output
    assert "imported 2 practitioners" in done.stdout and "skipped 4" in done.stdout
    with sessions() as s:
        people = {p.code: p for p in s.scalars(select(Practitioner).where(Practitioner.code.like(f"{tag}%")))}
        assert set(people) == {f"{tag}P1", f"{tag}P4"}
        for code, number in ((f"{tag}P1", good_a), (f"{tag}P4", good_b)):
            person = people[code]
            assert person.national_id_masked == number[0] + "*" * 16 + number[-1]
            assert (
                decrypt_national_id(KEYS, person.national_id_cipher, associated_data=code.encode()) == number
            )
            found = s.scalar(
                select(Practitioner.code).where(Practitioner.national_id_index == blind_index(KEYS, number))
            )
            assert found == code
            snapshot = s.get(PractitionerState, person.id)
            assert snapshot.practitioner_code == code and snapshot.ledger_version == 0
            assert snapshot.state == state_to_mapping(rules.PersonState())
            assert snapshot.announced_status == "not_registered" and snapshot.next_transition_on is None
        assert people[f"{tag}P4"].name == "Smith, Anna"

    # the database already holds them: found by the unique indexes, then reported row by row
    again = cli("import", "practitioners", str(path))
    assert again.exit_code == 1
    bad = _bad_lines(again.stderr)
    assert sorted(bad) == [2, 3, 4, 5, 6, 7]
    # a person's own national ID is not "held by another"; only the code is reported
    assert "already exists" in bad[2] and "already exists" in bad[5] and "already held" not in bad[5]
    skipped = cli("import", "practitioners", str(path), "--skip-bad")
    assert skipped.exit_code == 0 and "imported 0 practitioners" in skipped.stdout
    assert _count(sessions, Practitioner, Practitioner.code, tag) == 2


def test_a_new_person_among_known_ones_is_imported_after_the_careful_pass(cli, sessions, tmp_path, tag):
    first = _csv(tmp_path, "first.csv", ["code,name,id_number,category", f"{tag}K1,甲,{_id(2001)},nurse"])
    assert cli("import", "practitioners", str(first)).exit_code == 0
    second = _csv(
        tmp_path,
        "second.csv",
        [
            "code,name,id_number,category",
            f"{tag}K2,乙,{_id(2002)},nurse",
            f"{tag}K3,丙,{_id(2001)},nurse",  # the national ID of K1
        ],
    )
    refused = cli("import", "practitioners", str(second))
    assert refused.exit_code == 1 and sorted(_bad_lines(refused.stderr)) == [3]
    assert _count(sessions, Practitioner, Practitioner.code, tag) == 1
    done = cli("import", "practitioners", str(second), "--skip-bad")
    assert done.exit_code == 0 and "imported 1 practitioners" in done.stdout
    with sessions() as s:
        codes = set(
            s.scalars(
                select(PractitionerState.practitioner_code).where(
                    PractitionerState.practitioner_code.like(f"{tag}%")
                )
            )
        )
    assert codes == {f"{tag}K1", f"{tag}K2"}


def test_registrations_check_references_and_dates_and_make_people_active(
    cli, sessions, engine, url, tmp_path, tag
):
    institutions = _csv(
        tmp_path,
        "i.csv",
        [
            "code,name,kind,region_code",
            f"{tag}H1,H1,medical_institution,130100",
            f"{tag}H2,H2,retail_pharmacy,630100",
        ],
    )
    people = _csv(
        tmp_path,
        "p.csv",
        ["code,name,id_number,category"]
        + [f"{tag}R{n},人{n},{_id(3000 + n)},physician" for n in range(1, 5)],
    )
    assert cli("import", "institutions", str(institutions)).exit_code == 0
    assert cli("import", "practitioners", str(people)).exit_code == 0
    path = _csv(
        tmp_path,
        "registrations.csv",
        [
            "practitioner_code,institution_code,start_date,end_date",
            f"{tag}R1,{tag}H1,2025-01-01,",  # 2
            f"{tag}R1,{tag}H2,2025-03-01,",  # 3: multi-site
            f"{tag}R2,{tag}NOPE,2025-01-01,",  # 4: unknown institution
            f"{tag}NOBODY,{tag}H1,2025-01-01,",  # 5: unknown practitioner
            f"{tag}R3,{tag}H1,2025-06-01,2025-05-01",  # 6: end before start
            f"{tag}R3,{tag}H2,2025/06/01,",  # 7: not ISO
            f"{tag}R1,{tag}H1,2025-02-01,",  # 8: overlaps line 2
            f"{tag}R4,{tag}H1,2020-01-01,2021-01-01",  # 9: history
            f"{tag}R4,{tag}H1,2024-01-01,",  # 10
        ],
    )
    refused = cli("import", "registrations", str(path))
    assert refused.exit_code == 1
    bad = _bad_lines(refused.stderr)
    assert sorted(bad) == [4, 5, 6, 7, 8]
    assert f"no institution {tag}NOPE" in bad[4] and f"no practitioner {tag}NOBODY" in bad[5]
    assert "must be after" in bad[6] and "line 2" in bad[8]
    assert "start_date: a date written YYYY-MM-DD" in bad[7]
    with sessions() as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(Registration)
                .where(Registration.created_by == "import:registrations.csv")
            )
            == 0
        )

    done = cli("import", "registrations", str(path), "--skip-bad")
    assert done.exit_code == 0, done.output
    assert "imported 4 registrations" in done.stdout and "skipped 5" in done.stdout
    today = local_date(utc_now())
    with sessions() as s:
        rows = s.scalars(
            select(Registration).where(Registration.created_by == "import:registrations.csv")
        ).all()
        assert len(rows) == 4
        assert {r.ended_by for r in rows if r.end_date} == {"import:registrations.csv"}
        for code, status in ((f"{tag}R1", "active"), (f"{tag}R4", "active"), (f"{tag}R2", "not_registered")):
            person = s.scalar(select(Practitioner).where(Practitioner.code == code))
            snapshot = s.get(PractitionerState, person.id)
            expected = derive(s, person, load_policy_set())
            assert snapshot.state == state_to_mapping(expected)
            assert snapshot.announced_status == rules.eligibility_on(expected, today).status == status
            assert snapshot.next_transition_on == rules.next_change_after(expected, today)

    app = create_app(Settings(database_url=url, rate_limit=""), engine=engine)
    with app.app_context():
        key = make_key(app.extensions["points_service"].sessions, "admin")
    client = app.test_client()
    answer = client.get(f"/v1/practitioners/{tag}R1/eligibility", headers=auth(key)).get_json()
    assert answer["eligible"] is True and answer["status"] == "active"
    at_h2 = client.get(
        f"/v1/practitioners/{tag}R1/eligibility",
        headers=auth(key),
        query_string={"institution_code": f"{tag}H2", "at": "2025-02-01"},
    ).get_json()
    assert at_h2["status"] == "not_registered"  # H2 only from 2025-03-01

    again = cli("import", "registrations", str(path), "--skip-bad")
    assert "duplicate registration" in _bad_lines(again.stderr)[2]


def test_a_file_that_cannot_be_read_imports_nothing_even_with_skip_bad(cli, tmp_path, tag):
    missing = _csv(tmp_path, "m.csv", ["code,name,kind", f"{tag},x,medical_institution"])
    result = cli("import", "institutions", str(missing), "--skip-bad")
    assert result.exit_code == 1 and "line 1: missing column(s) region_code" in result.stderr
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert "empty" in cli("import", "practitioners", str(empty)).stderr
    latin = tmp_path / "latin.csv"
    latin.write_bytes(
        b"code,name,kind,region_code\n"
        + f"{tag}U,ok,medical_institution,130100\n".encode()
        + f"{tag}V,caf\xe9,medical_institution,130100\n".encode("latin-1")
        + b"short,row\n"
    )
    bad = _bad_lines(cli("import", "institutions", str(latin)).stderr)
    assert "not valid UTF-8" in bad[3] and "expected 4 fields, got 2" in bad[4]


def test_fast_national_id_helpers_agree_with_pii():
    number = _id(4242)
    assert national_id_index(KEYS)(number) == blind_index(KEYS, number)
    blob = national_id_cipher(KEYS)(number, "P-1")
    assert decrypt_national_id(KEYS, blob, associated_data=b"P-1") == number


def test_demo_seed_writes_a_ledger_whose_snapshots_are_the_rules(cli, sessions):
    result = cli("demo", "seed", "--practitioners", "400", "--violations", "500", "--seed", "7")
    assert result.exit_code == 0, result.output
    assert "keys create --role admin" in result.stdout
    policies = load_policy_set()
    today = local_date(utc_now())
    with sessions() as s:
        people = s.scalars(select(Practitioner).where(Practitioner.code.like("D7-%"))).all()
        assert len(people) == 400
        ids = [p.id for p in people]
        violations = s.scalars(select(Violation).where(Violation.practitioner_id.in_(ids))).all()
        assert len(violations) == 500
        assert {v.score_year for v in violations} <= {today.year - 1, today.year}
        assert all(v.occurred_on <= v.decided_on <= today for v in violations)
        assert min(v.points for v in violations) == 1 and max(v.points for v in violations) >= 4
        assert (
            s.scalar(
                select(func.count()).select_from(LedgerEntry).where(LedgerEntry.practitioner_id.in_(ids))
            )
            == 500
        )
        provinces = set(
            s.scalars(
                select(func.substr(Institution.region_code, 1, 2)).where(Institution.code.like("%-7-%"))
            )
        )
        assert "13" in provinces
        multi = s.execute(
            select(Registration.practitioner_id)
            .where(Registration.practitioner_id.in_(ids))
            .group_by(Registration.practitioner_id)
            .having(func.count() > 1)
        ).all()
        assert multi
        offenders = sorted({v.practitioner_id for v in violations})
        sample = random.Random(3).sample(offenders, 25) + random.Random(4).sample(ids, 10)
        by_id = {p.id: p for p in people}
        for pid in sample:
            person = by_id[pid]
            expected = derive(s, person, policies)
            snapshot = s.get(PractitionerState, pid)
            assert snapshot.state == state_to_mapping(expected)
            assert snapshot.ledger_version == sum(1 for v in violations if v.practitioner_id == pid)
            assert snapshot.announced_status == rules.eligibility_on(expected, today).status
            assert snapshot.next_transition_on == rules.next_change_after(expected, today)
            measures = s.execute(
                select(Measure.year, Measure.kind, Measure.violation_id, Measure.state).where(
                    Measure.practitioner_id == pid
                )
            ).all()
            assert sorted((y, k, v) for y, k, v, _ in measures) == sorted(
                (m.year, m.kind, m.violation_id) for m in expected.measures
            )
            assert {state for *_, state in measures} <= {"pending"}
            # every decision is on conduct inside a registration at its institution (as the API checks)
            codes = dict(s.execute(select(Institution.id, Institution.code)).all())
            for v in (v for v in violations if v.practitioner_id == pid):
                assert any(
                    span.institution_code == codes[v.institution_id] and span.covers(v.occurred_on)
                    for span in expected.registrations
                )

    again = cli("demo", "seed", "--practitioners", "10", "--violations", "0", "--seed", "7")
    assert again.exit_code != 0 and "already" in again.output


def _demo_rows(url: str, *, now: dt.datetime) -> dict[str, list]:
    """Seed 5 on a fresh database; every row written, but the ciphertexts (their nonces are random)."""
    upgrade_database(url)
    engine, policies = make_engine(url), load_policy_set()
    try:
        with transaction(make_sessionmaker(engine), write=True) as s:
            seed_demo(s, practitioners=300, violations=300, seed=5, keys=KEYS, policies=policies, now=now)
        rows = {}
        models = (Institution, Practitioner, Registration, Violation, LedgerEntry, PractitionerState, Measure)
        with engine.connect() as connection:
            for table in (model.__table__ for model in models):
                columns = [c for c in table.c if c.name != "national_id_cipher"]
                rows[table.name] = connection.execute(select(*columns).order_by(*table.primary_key)).all()
        return rows
    finally:
        engine.dispose()


def test_the_same_seed_and_sizes_give_the_same_demo_data(tmp_path_factory):
    """What `demo seed` writes depends on the seed, the sizes and the day alone, so the benchmark
    seeds the same data on every machine."""
    now = dt.datetime(2026, 11, 23, 4, 0, tzinfo=dt.UTC)
    first = _demo_rows(fresh_database_url(tmp_path_factory, "demo_a"), now=now)
    second = _demo_rows(fresh_database_url(tmp_path_factory, "demo_b"), now=now)
    assert first == second
    assert len(first["violation"]) == 300 and first["measure"]


# -- imports a person can run twice and watch ----------------------------------------------------------


def _lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_rerunning_yesterdays_files_with_skip_existing_is_a_no_op(cli, sessions, tmp_path, tag):
    institutions = _csv(
        tmp_path, "i.csv", ["code,name,kind,region_code", f"{tag}H1,一院,medical_institution,130100"]
    )
    people = _csv(
        tmp_path,
        "p.csv",
        ["code,name,id_number,category"] + [f"{tag}S{n},人{n},{_id(5000 + n)},nurse" for n in range(1, 4)],
    )
    registrations = _csv(
        tmp_path,
        "r.csv",
        ["practitioner_code,institution_code,start_date,end_date"]
        + [f"{tag}S{n},{tag}H1,2025-01-0{n},{'2025-06-01' if n == 3 else ''}" for n in range(1, 4)],
    )
    for kind, path in (
        ("institutions", institutions),
        ("practitioners", people),
        ("registrations", registrations),
    ):
        assert cli("import", kind, str(path)).exit_code == 0
        again = cli("import", kind, str(path), "--skip-existing")
        assert again.exit_code == 0, again.output
        assert _bad_lines(again.stderr) == {}
        assert f"imported 0 {kind}" in again.stdout
        assert "already there, skipped" in again.stdout
    assert _count(sessions, Practitioner, Practitioner.code, tag) == 3
    with sessions() as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(Registration)
                .where(Registration.created_by == "import:r.csv")
            )
            == 3
        )


def test_with_skip_existing_a_row_that_differs_from_what_is_stored_is_a_bad_row(cli, sessions, tmp_path, tag):
    number, other = _id(6001), _id(6002)
    first = _csv(
        tmp_path,
        "first.csv",
        ["code,name,id_number,category", f"{tag}D1,张三,{number},nurse", f"{tag}D2,李四,{_id(6003)},nurse"],
    )
    assert cli("import", "practitioners", str(first)).exit_code == 0
    changed = _csv(
        tmp_path,
        "changed.csv",
        [
            "code,name,id_number,category",
            f"{tag}D1,张三,{other},nurse",  # 2: another national ID under the same code
            f"{tag}D2,李四四,{_id(6003)},pharmacist",  # 3: another name and category
            f"{tag}D3,王五,{number},nurse",  # 4: D1's national ID under a new code
            f"{tag}D4,赵六,{_id(6004)},nurse",  # 5: new
        ],
    )
    result = cli("import", "practitioners", str(changed), "--skip-existing")
    assert result.exit_code == 1
    bad = _bad_lines(result.stderr)
    assert sorted(bad) == [2, 3, 4]
    assert "exists with another id_number" in bad[2]
    assert "exists with another name, category" in bad[3]
    assert "already held by another practitioner" in bad[4]
    assert number not in result.output and other not in result.output
    done = cli("import", "practitioners", str(changed), "--skip-existing", "--skip-bad")
    assert done.exit_code == 0 and "imported 1 practitioners" in done.stdout
    assert _count(sessions, Practitioner, Practitioner.code, tag) == 3

    institutions = _csv(
        tmp_path, "i.csv", ["code,name,kind,region_code", f"{tag}I,Clinic,medical_institution,130100"]
    )
    assert cli("import", "institutions", str(institutions)).exit_code == 0
    moved = _csv(
        tmp_path, "i2.csv", ["code,name,kind,region_code", f"{tag}I,Clinic,medical_institution,630100"]
    )
    refused = cli("import", "institutions", str(moved), "--skip-existing")
    assert refused.exit_code == 1 and "exists with another region_code" in _bad_lines(refused.stderr)[2]

    spans = _csv(
        tmp_path, "r.csv", ["practitioner_code,institution_code,start_date", f"{tag}D1,{tag}I,2025-01-01"]
    )
    assert cli("import", "registrations", str(spans)).exit_code == 0
    ended = _csv(
        tmp_path,
        "r2.csv",
        ["practitioner_code,institution_code,start_date,end_date", f"{tag}D1,{tag}I,2025-01-01,2025-09-01"],
    )
    refused = cli("import", "registrations", str(ended), "--skip-existing")
    assert refused.exit_code == 1 and "exists with another end_date (none)" in _bad_lines(refused.stderr)[2]


def _gbk_file(tmp_path: Path, tag: str) -> Path:
    path = tmp_path / "his-export.csv"
    rows = ["code,name,id_number,category"] + [
        f"{tag}G{n},张{n}伟,{_id(7000 + n)},physician" for n in range(1, 4)
    ]
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode("gbk"))
    return path


def test_a_gbk_file_is_refused_with_the_hint_to_pass_encoding_gbk_and_then_imported(
    cli, sessions, tmp_path, tag
):
    path = _gbk_file(tmp_path, tag)
    refused = cli("import", "practitioners", str(path))
    assert refused.exit_code == 1
    assert {n: "not valid UTF-8" in line for n, line in _bad_lines(refused.stderr).items()} == {
        2: 1,
        3: 1,
        4: 1,
    }
    assert "3 line(s) not UTF-8; if the file is GBK, pass --encoding gbk" in refused.stderr
    assert "Traceback" not in refused.output

    done = cli("import", "practitioners", str(path), "--encoding", "gbk")
    assert done.exit_code == 0, done.output
    with sessions() as s:
        names = set(s.scalars(select(Practitioner.name).where(Practitioner.code.like(f"{tag}G%"))))
    assert names == {"张1伟", "张2伟", "张3伟"}


def test_a_header_that_is_not_utf8_is_refused_with_the_hint_at_once(cli, tmp_path):
    path = tmp_path / "h.csv"
    path.write_bytes("编码,姓名\n".encode("gbk"))
    result = cli("import", "institutions", str(path))
    assert result.exit_code == 1
    assert "line 1: the header is not valid UTF-8; if the file is GBK, pass --encoding gbk" in result.stderr
    assert len(_lines(result.stderr)) == 2


def test_an_unknown_or_unusable_encoding_is_refused_in_one_line(cli, tmp_path):
    path = _csv(tmp_path, "i.csv", ["code,name,kind,region_code"])
    for encoding, said in (("klingon", "unknown encoding"), ("utf-16", "convert the file to UTF-8")):
        result = CliRunner().invoke(main, ["import", "institutions", str(path), "--encoding", encoding])
        assert result.exit_code == 2 and said in result.output and len(_lines(result.output)) <= 3


def test_dry_run_checks_against_the_database_and_writes_nothing(cli, sessions, tmp_path, tag):
    known = _csv(tmp_path, "k.csv", ["code,name,id_number,category", f"{tag}Y1,甲,{_id(8001)},nurse"])
    assert cli("import", "practitioners", str(known)).exit_code == 0
    path = _csv(
        tmp_path,
        "dry.csv",
        [
            "code,name,id_number,category",
            f"{tag}Y2,乙,{_id(8002)},nurse",
            f"{tag}Y3,丙,{_id(8003)},nurse",
            f"{tag}Y1,甲,{_id(8001)},nurse",  # 4: stored already
        ],
    )
    with sessions() as s:
        audits = s.scalar(select(func.count()).select_from(AuditEvent))
    refused = cli("import", "practitioners", str(path), "--dry-run")
    assert refused.exit_code == 1 and sorted(_bad_lines(refused.stderr)) == [4]
    assert "nothing would be imported" in refused.stderr
    fine = cli("import", "practitioners", str(path), "--dry-run", "--skip-existing")
    assert fine.exit_code == 0, fine.output
    assert "dry run: 2 practitioners from dry.csv would be imported; 1 already there" in fine.stdout
    assert "nothing was written" in fine.stdout
    for kind, lines in (
        ("institutions", ["code,name,kind,region_code", f"{tag}YH,医院,medical_institution,130100"]),
        ("registrations", ["practitioner_code,institution_code,start_date", f"{tag}Y1,{tag}NOPE,2025-01-01"]),
    ):
        result = cli("import", kind, str(_csv(tmp_path, f"{kind}.csv", lines)), "--dry-run", "--skip-bad")
        assert result.exit_code == 0 and "nothing was written" in result.stdout
    assert _count(sessions, Practitioner, Practitioner.code, tag) == 1
    assert _count(sessions, Institution, Institution.code, tag) == 0
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == audits


def test_a_file_without_a_header_is_refused_without_echoing_its_first_row(cli, tmp_path, tag):
    number = _id(9001)
    path = _csv(
        tmp_path, "noheader.csv", [f"{tag}N1,孙悟空,{number},nurse", f"{tag}N2,猪八戒,{_id(9002)},nurse"]
    )
    result = cli("import", "practitioners", str(path))
    assert result.exit_code == 1
    assert (
        "the first line is not a header; the file must start with code,name,id_number,category"
        in result.stderr
    )
    assert number not in result.output and number[4:14] not in result.output and "孙悟空" not in result.output


def test_no_error_ever_prints_a_national_id_whatever_column_it_is_in(cli, tmp_path, tag):
    number = _id(9101)
    path = _csv(
        tmp_path,
        "swapped.csv",
        ["code,name,id_number,category", f"{number},{tag},{number}x,nurse", f"{tag}Q,{number},bad,{number}"],
    )
    result = cli("import", "practitioners", str(path))
    assert result.exit_code == 1 and sorted(_bad_lines(result.stderr)) == [2, 3]
    assert number not in result.output
    assert number[0] + "*" * 16 + number[-1] in result.output  # masked as everywhere else


def test_a_nul_in_a_field_is_a_bad_row_not_a_traceback(cli, sessions, tmp_path, tag):
    path = tmp_path / "nul.csv"
    path.write_text(
        f"code,name,kind,region_code\n{tag}Z1,ok,medical_institution,130100\n{tag}Z2,a\x00b,medical_institution,130100\n",
        "utf-8",
    )
    refused = cli("import", "institutions", str(path))
    assert refused.exit_code == 1 and "NUL" in _bad_lines(refused.stderr)[3]
    done = cli("import", "institutions", str(path), "--skip-bad")
    assert done.exit_code == 0 and "imported 1 institutions" in done.stdout
    people = tmp_path / "nul-people.csv"
    people.write_text(f"code,name,id_number,category\n{tag}Z3,x\x00,{_id(9201)},nurse\n", "utf-8")
    result = cli("import", "practitioners", str(people))
    assert result.exit_code == 1 and "NUL" in _bad_lines(result.stderr)[2]


def test_the_file_is_read_as_it_goes_never_whole(cli, sessions, tmp_path, tag, monkeypatch):
    path = _csv(tmp_path, "s.csv", ["code,name,id_number,category", f"{tag}W1,甲,{_id(9301)},nurse"])

    def whole(*_, **__):
        raise AssertionError("the file was read whole")

    monkeypatch.setattr(Path, "read_bytes", whole)
    assert cli("import", "practitioners", str(path)).exit_code == 0
    assert _count(sessions, Practitioner, Practitioner.code, tag) == 1


def test_the_status_line_says_how_far_how_fast_and_how_long_still():
    from points_service.cli.imports import progress_line

    line = progress_line("importing", 500, 1000, 10_000, 2.0)
    assert line == "importing  50%  10,000 rows  5,000 rows/s  0:02 left"
    assert progress_line("checking", 0, 1000, 0, 0.0).endswith("0 rows/s  0:00 left")


def test_no_status_line_is_drawn_when_stderr_is_not_a_terminal_and_the_summary_says_the_rate(
    cli, tmp_path, tag
):
    path = _csv(tmp_path, "q.csv", ["code,name,kind,region_code", f"{tag}T,T,medical_institution,130100"])
    result = cli("import", "institutions", str(path))
    assert result.exit_code == 0 and "\r" not in result.output
    assert "rows/s" in result.stdout and result.stderr == ""


# -- one set of checks and one write path with the API ------------------------------------------------


def test_a_value_the_api_refuses_the_import_refuses_in_the_same_words(cli, api, tmp_path, tag):
    admin = api("admin")
    hospital = admin.institution()
    person = admin.practitioner()
    registrations = "practitioner_code,institution_code,start_date"
    cases = [
        (
            "institutions",
            "code,name,kind,region_code",
            {"code": f"{tag}V1", "name": "Clinic", "kind": "medical_institution", "region_code": "990100"},
            "/v1/institutions",
            "region_code",
        ),
        (
            "institutions",
            "code,name,kind,region_code",
            {"code": f"{tag}V2", "name": "A\u200bB", "kind": "retail_pharmacy", "region_code": "130100"},
            "/v1/institutions",
            "name",
        ),
        (
            "registrations",
            registrations,
            {"practitioner_code": person, "institution_code": hospital, "start_date": "2025-02-30"},
            f"/v1/practitioners/{person}/registrations",
            "start_date",
        ),
        (
            "registrations",
            registrations,
            {"practitioner_code": person, "institution_code": hospital, "start_date": "1989-12-31"},
            f"/v1/practitioners/{person}/registrations",
            "start_date",
        ),
    ]
    for number, (kind, header, row, path, field) in enumerate(cases):
        body = {k: v for k, v in row.items() if k != "practitioner_code"}
        said = admin.post(path, body, status=422)["errors"][field]
        assert len(said) == 1
        result = cli("import", kind, str(_csv(tmp_path, f"{number}.csv", [header, ",".join(row.values())])))
        assert result.exit_code == 1
        assert _bad_lines(result.stderr) == {2: f"line 2: {field}: {said[0]}"}


def test_a_registration_imported_from_before_a_termination_is_ended_by_it_and_announced(
    cli, api, sessions, url, tmp_path
):
    admin, inspector = api("admin"), api("inspector")
    person, hospital = admin.person(start="2025-01-01")
    decision = inspector.violation(
        person, hospital, behaviour_code="B4-01", responsibility="main", decided_on="2026-03-01"
    )
    assert decision["points"] == 12  # a termination on 2026-03-01 ends every registration it finds
    pharmacy = admin.institution(kind="retail_pharmacy")
    path = _csv(
        tmp_path,
        "before.csv",
        ["practitioner_code,institution_code,start_date", f"{person},{pharmacy},2025-06-01"],
    )
    done = cli("import", "registrations", str(path))
    assert done.exit_code == 0, done.output
    with sessions() as s:
        practitioner = s.scalar(select(Practitioner).where(Practitioner.code == person))
        (imported,) = s.scalars(
            select(Registration).where(
                Registration.practitioner_id == practitioner.id,
                Registration.created_by == "import:before.csv",
            )
        ).all()
        ended = s.scalars(
            select(OutboxEvent).where(
                OutboxEvent.practitioner_id == practitioner.id, OutboxEvent.type == "registration.ended"
            )
        ).all()
        assert [e.data for e in ended if e.data["registration_id"] == imported.id] == [
            {
                "practitioner_code": person,
                "institution_code": pharmacy,
                "registration_id": imported.id,
                "end_date": "2026-03-01",
                "reason": "termination",
            }
        ]
        expected = derive(s, practitioner, load_policy_set())
        snapshot = s.get(PractitionerState, practitioner.id)
        assert snapshot.state == state_to_mapping(expected)
        assert snapshot.announced_status == "terminated"
        assert snapshot.ledger_version == 1
