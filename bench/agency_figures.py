"""Time GET /v1/statistics against a seeded database and print one markdown table.

The target (docs/api.md Statistics): every answer within 1 s on 1,000,000 practitioners and
200,000 decisions, which `points-service demo seed --practitioners 1000000 --violations 200000`
makes (`make bench` seeds `points_bench` so). The app runs in this process and is called through
Flask's test client, so a figure is the whole request (key check, every aggregate, the JSON or CSV
answer) without the network. Each case is asked once to warm up, then `--rounds` times; the table
gives the fastest, the median and the slowest (the fastest is the best estimate of the request's
own cost on a machine shared with other work; the target is on the slowest). Two keys are made for
the run (an admin key and an HR system's key for the institution with the most registrations) and
revoked at the end.

    .venv/bin/python bench/agency_figures.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/points_bench
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

# this file has the standard library's name `statistics`: its folder, first on the path when it
# runs as a script, must not hide that module from the code it imports
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import statistics  # noqa: E402

from sqlalchemy import func, select, text

from points_service import create_app
from points_service.clock import local_today, utc_now
from points_service.logs import configure_logging
from points_service.persistence.engine import make_engine, transaction
from points_service.persistence.models import Institution, Practitioner, Registration, Violation
from points_service.services.keys import CreateKey, create_key, revoke_key
from points_service.settings import Settings

TARGET_SECONDS = 1.0
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/points_bench"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--database-url", default=DEFAULT_URL, help=f"default: {DEFAULT_URL}")
    parser.add_argument("--rounds", type=int, default=9, help="timed requests per case (default 9)")
    parser.add_argument("--year", type=int, default=local_today().year, help="the score year asked about")
    args = parser.parse_args()
    configure_logging("WARNING")

    settings = Settings(database_url=args.database_url, rate_limit="", log_level="WARNING")
    engine = make_engine(args.database_url)
    app = create_app(settings, engine=engine)
    sessions = app.extensions["points_service"].sessions
    with transaction(sessions, write=True) as session:
        people = session.scalar(select(func.count()).select_from(Practitioner))
        decisions = session.scalar(select(func.count()).select_from(Violation))
        busiest = session.execute(
            select(Institution.code, Institution.region_code)
            .join(Registration, Registration.institution_id == Institution.id)
            .group_by(Institution.id)
            .order_by(func.count().desc(), Institution.code)
            .limit(1)
        ).one()
        admin_row, admin_key = create_key(
            session, CreateKey(role="admin", name="bench-statistics"), now=utc_now()
        )
        hr_row, hr_key = create_key(
            session,
            CreateKey(role="hr_system", name="bench-statistics", institution_code=busiest.code),
            now=utc_now(),
        )
        made = [admin_row.prefix, hr_row.prefix]
        server = (
            session.scalar(text("SHOW server_version")) if engine.dialect.name == "postgresql" else "SQLite"
        )

    year = str(args.year)
    province = busiest.region_code[:2]
    cases = [
        ("national (admin)", admin_key, {"year": year}, None),
        (f"province {province} (admin)", admin_key, {"year": year, "province": province}, None),
        (
            f"institution {busiest.code} (admin)",
            admin_key,
            {"year": year, "institution_code": busiest.code},
            None,
        ),
        ("its own institution (hr_system)", hr_key, {"year": year}, None),
        ("national, CSV (admin)", admin_key, {"year": year, "format": "csv"}, None),
        (
            f"province {province}, Accept: text/csv",
            admin_key,
            {"year": year, "province": province},
            "text/csv",
        ),
    ]
    client = app.test_client()
    load_before = _load()
    rows = []
    try:
        for label, key, query, accept in cases:
            headers = {"Authorization": f"Bearer {key}"}
            if accept:
                headers["Accept"] = accept
            timings = []
            for round_ in range(args.rounds + 1):
                started = time.perf_counter()
                response = client.get("/v1/statistics", query_string=query, headers=headers)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    print(
                        f"{label}: {response.status_code} {response.get_data(as_text=True)}", file=sys.stderr
                    )
                    return 1
                if round_:  # the first request warms the caches and the connection pool
                    timings.append(elapsed)
            rows.append((label, min(timings), statistics.median(timings), max(timings), response))
    finally:
        with transaction(sessions, write=True) as session:
            for prefix in made:
                revoke_key(session, prefix, now=utc_now())
        engine.dispose()

    print(f"# GET /v1/statistics, {time.strftime('%Y-%m-%d %H:%M %Z')}\n")
    print(
        f"Machine: {len(os.sched_getaffinity(0))} cores ({_cpu()}), {_ram()} RAM, Linux "
        f"{platform.release()}, {server}, Python {platform.python_version()}. Data: {people:,} "
        f"practitioners, {decisions:,} decisions; score year {year}; in process (Flask test client), "
        f"{args.rounds} rounds after one warm-up.\n"
    )
    print(f"Load average before the run: {load_before}; after: {_load()}.\n")
    print("| Case | Fastest | Median | Slowest | Target | Result | decisions | people suspended today |")
    print("|---|---|---|---|---|---|---|---|")
    for label, fastest, median, worst, response in rows:
        ok = worst <= TARGET_SECONDS
        figures = _figures(response)
        print(
            f"| {label} | {fastest * 1000:.0f} ms | {median * 1000:.0f} ms | {worst * 1000:.0f} ms "
            f"| ≤ {TARGET_SECONDS * 1000:.0f} ms "
            f"| {'pass' if ok else '**FAIL**'} | {figures[0]} | {figures[1]} |"
        )
    # a measurement, not a timed test (as bench/run.py): it passes or fails in the table only
    return 0


def _figures(response) -> tuple[str, str]:
    """Two figures of the answer, to show each case counted something."""
    if response.mimetype == "text/csv":
        rows = dict(
            ((section, key), value)
            for section, key, value in (
                line.split(",", 2) for line in response.get_data(as_text=True).split()[1:]
            )
        )
        return rows[("decisions", "total")], rows[("suspended_today", "total")]
    body = response.get_json()
    return str(body["decisions"]), str(body["suspended_today"])


def _load() -> str:
    """The 1-, 5- and 15-minute load averages: how much else the machine was doing."""
    return " / ".join(Path("/proc/loadavg").read_text().split()[:3])


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def _ram() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    return "?"


if __name__ == "__main__":
    sys.exit(main())
