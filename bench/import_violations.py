"""How long `points-service import violations` takes: 200,000 decisions for 1,000,000 people.

1. A template database, `points_bench_imp_seed` (--seed-database), holds 1,000,000 practitioners
   (--practitioners) with their institutions and registrations and no decision, made once with
   `points-service demo seed --violations 0` and reused while it holds that many people.
2. A CSV file of 200,000 decisions (--violations), drawn with a fixed seed from the registrations:
   conduct on a day the person was registered there (from 2025-01-01 to yesterday), decided on it
   or up to 60 days later (never after today), a catalogue code and a responsibility; a draw that
   would bring a person's year to the termination threshold is drawn again, so that no decision of
   the file follows its person's termination and every row imports.
3. Each run copies the template into `points_bench_imp` (--database; CREATE DATABASE … TEMPLATE),
   so every run imports into the same state, and times the command as an operator runs it, in its
   own process. Then it counts what was written, and prints a markdown table: rows, seconds,
   rows/s, the load average before and after.

Needs PostgreSQL on 127.0.0.1:5432 with trust authentication for `postgres`, and about 2.5 GB of
disk for the two databases. Run: `.venv/bin/python bench/import_violations.py`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_SERVER = "postgresql://postgres@127.0.0.1:5432/"
SQLALCHEMY_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/"
HEADER = "case_ref,practitioner_code,institution_code,behaviour_code,responsibility,occurred_on,decided_on"
FIRST_DAY = dt.date(2025, 1, 1)  # the profiles' scheme starts here
# catalogue codes by weight: mostly the lighter bands, as inspections find them
BEHAVIOURS = [
    ("B1-01", 40),
    ("B1-02", 15),
    ("B1-99", 10),
    ("B2-01", 15),
    ("B2-99", 10),
    ("B3-01", 6),
    ("B4-99", 4),
]
RESPONSIBILITIES = [("general", 60), ("important", 30), ("main", 10)]
STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[bench {time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def connect(name: str) -> psycopg.Connection:
    return psycopg.connect(PG_SERVER + name, autocommit=True)


def points_service(*args: str, database: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "POINTS_DATABASE_URL": SQLALCHEMY_PG + database,
        "POINTS_ALLOW_DEV_KEYS": "1",  # demo seed writes under the public development keys
        "POINTS_LOG_LEVEL": "WARNING",
    }
    done = subprocess.run(
        [str(BIN / "points-service"), *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(
            f"points-service {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done


def ensure_seed(name: str, practitioners: int) -> None:
    from points_service.persistence.schema import upgrade_database

    with connect("postgres") as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')
    upgrade_database(SQLALCHEMY_PG + name)
    with connect(name) as conn:
        have = conn.execute("SELECT count(*) FROM practitioner").fetchone()[0]
        decided = conn.execute("SELECT count(*) FROM violation").fetchone()[0]
    if have == practitioners and decided == 0:
        log(f"reusing {name} ({have} practitioners, no decision)")
        return
    if have:
        raise SystemExit(
            f"{name} holds {have} practitioners and {decided} decisions: drop it to seed it again"
        )
    log(f"seeding {name}: {practitioners} practitioners, no decision (first run only)")
    started = time.perf_counter()
    points_service("demo", "seed", "--practitioners", str(practitioners), "--violations", "0", database=name)
    log(f"seeded in {time.perf_counter() - started:.0f} s")
    with connect(name) as conn:
        conn.execute("VACUUM ANALYZE")


def write_decisions(seed_db: str, count: int, path: Path, today: dt.date) -> None:
    """`count` decisions that all import: see the module's docstring."""
    from points_service.settings import load_policy_set

    policies = load_policy_set()
    with connect(seed_db) as conn:
        spans = conn.execute(
            "SELECT p.code, i.code, i.region_code, r.start_date, r.end_date FROM registration r"
            " JOIN practitioner p ON p.id = r.practitioner_id JOIN institution i ON i.id = r.institution_id"
            " WHERE r.start_date < %s AND (r.end_date IS NULL OR r.end_date > %s)"
            " ORDER BY r.id",
            (today, FIRST_DAY),
        ).fetchall()
    rng = random.Random(20261203)
    codes, code_weights = zip(*BEHAVIOURS, strict=True)
    kinds, kind_weights = zip(*RESPONSIBILITIES, strict=True)
    totals: dict[tuple[str, int], int] = {}
    written = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER + "\n")
        while written < count:
            person, place, region, start, end = spans[rng.randrange(len(spans))]
            first = max(start, FIRST_DAY).toordinal()
            last = min(end or today, today).toordinal() - 1
            if last < first:
                continue
            occurred = dt.date.fromordinal(rng.randint(first, last))
            decided = min(occurred + dt.timedelta(days=rng.randint(0, 60)), today)
            behaviour = rng.choices(codes, code_weights)[0]
            responsibility = rng.choices(kinds, kind_weights)[0]
            policy = policies.profile_for(region, decided)
            points = policy.points_for(behaviour, responsibility)
            year = (person, decided.year)
            if totals.get(year, 0) + points >= policy.termination_points:
                continue
            totals[year] = totals.get(year, 0) + points
            written += 1
            out.write(
                f"BENCH-IMP-{written:07d},{person},{place},{behaviour},{responsibility},"
                f"{occurred.isoformat()},{decided.isoformat()}\n"
            )
    log(f"wrote {count} decisions for {len({p for p, _ in totals})} people to {path}")


def fresh_copy(seed_db: str, name: str) -> None:
    with connect("postgres") as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{seed_db}"')
    with connect(name) as conn:
        conn.execute("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--practitioners", type=int, default=1_000_000)
    parser.add_argument("--violations", type=int, default=200_000)
    parser.add_argument("--seed-database", default="points_bench_imp_seed")
    parser.add_argument("--database", default="points_bench_imp")
    parser.add_argument("--keep", action="store_true", help="keep the imported database for a look")
    args = parser.parse_args()
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    ensure_seed(args.seed_database, args.practitioners)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "decisions.csv"
        write_decisions(args.seed_database, args.violations, path, today)
        fresh_copy(args.seed_database, args.database)
        load_before = os.getloadavg()[0]
        log(f"importing into {args.database} (load average {load_before:.2f})")
        started = time.perf_counter()
        done = points_service("import", "violations", str(path), database=args.database)
        seconds = time.perf_counter() - started
        load_after = os.getloadavg()[0]
    log(done.stdout.strip())
    with connect(args.database) as conn:
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("violation", "ledger_entry", "measure", "outbox_event")
        }
    if not args.keep:
        with connect("postgres") as admin:
            admin.execute(f'DROP DATABASE "{args.database}" WITH (FORCE)')
    print(f"`points-service import violations`, {dt.date.today().isoformat()}, {os.cpu_count()} cores\n")
    print("| Decisions | People in the database | Seconds | Rows/s | Load average before / after |")
    print("|---|---|---|---|---|")
    print(
        f"| {args.violations:,} | {args.practitioners:,} | {seconds:.1f} | {args.violations / seconds:,.0f} "
        f"| {load_before:.2f} / {load_after:.2f} |"
    )
    print(
        f"\nWritten: {counts['violation']:,} violations, {counts['ledger_entry']:,} ledger entries, "
        f"{counts['measure']:,} measure tasks, {counts['outbox_event']:,} feed events in all."
    )
    if counts["violation"] != args.violations:
        raise SystemExit(f"expected {args.violations} violations, found {counts['violation']}")


if __name__ == "__main__":
    main()
