"""`make bench`: the issue-6 benchmark against PostgreSQL; prints one table (also bench/results.md).

What it does, in order (bench/README.md says more):

1. Databases on 127.0.0.1:5432 (trust auth, user postgres): `points_bench` with 1,000,000
   practitioners and 200,000 decisions, `points_bench_small` with 10,000 and 2,000, each created,
   migrated and seeded with `points-service demo seed` only when it does not hold that many people
   yet (a rerun reuses them). `points_bench` also gets an institution with exactly 2,000 registered
   staff for the roster (`points-service import institutions|registrations`). Fresh API keys.
2. gunicorn on 127.0.0.1:8100 (4 workers x 2 threads, rate limiter off, the framework-floor
   endpoints on, worker recycling off so that a worker's memory after 100,000 requests is its own).
3. Load from separate processes (wrk, installed from Debian's packages when missing; else
   bench/pyload.py), authenticated with a Bearer key, on loopback:
   single eligibility GET vs the floor GET, batch of 1000 vs the floor batch, the 2000-staff roster
   (4 pages of 500) vs the floor roster (one request of 2000 rows), violation writes from 8 clients
   with a ledger recount afterwards, the 1 January rollover and the next day's transitions sweep on
   10k vs 1M people, and then, on a gunicorn of one worker so that it takes every request, that
   worker's resident size after 100,000 requests.
4. One markdown table with the date, the machine and the dataset; gunicorn is stopped at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent
PG_SERVER = "postgresql://postgres@127.0.0.1:5432/"
SQLALCHEMY_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/"
HOST, PORT = "127.0.0.1", 8100
BIG, SMALL = "points_bench", "points_bench_small"  # --database / --small-database change them
ROSTER_CODE, ROSTER_SIZE, ROSTER_REGION = "HBENCH-ROSTER-2000", 2000, "130102"
SHANGHAI = ZoneInfo("Asia/Shanghai")
WRITES_TARGET = 300  # violation writes a second (issue 6)
SOLO_SECONDS = 5.0  # the one-client write run that measures a write's cost
ROUNDS = 3  # of floor, eligibility, eligibility, floor, bare in the single-GET measure
WORKERS, THREADS = 4, 2  # 2 × cores workers (the gunicorn_conf default); 2 threads measured best here
STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[bench {time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


# -- databases ------------------------------------------------------------------------------------


def sa_url(name: str) -> str:
    return SQLALCHEMY_PG + name


def connect(name: str) -> psycopg.Connection:
    # no parallel query: its workers live for one statement, so CpuWatch never saw their CPU and
    # counted it as other processes' (part of the 18-22% once reported for the write phase)
    return psycopg.connect(PG_SERVER + name, autocommit=True, options="-c max_parallel_workers_per_gather=0")


def scalar(conn: psycopg.Connection, sql: str, params: Sequence[Any] | dict | None = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def points_service(*args: str, database: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "POINTS_DATABASE_URL": sa_url(database), "POINTS_LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        [str(BIN / "points-service"), *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if check and done.returncode != 0:
        raise SystemExit(
            f"points-service {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done


def ensure_database(name: str, practitioners: int, violations: int) -> dict[str, Any]:
    """Create, migrate and seed `name` unless it already holds `practitioners` people."""
    from points_service.cli import upgrade_database

    with connect("postgres") as admin:
        exists = scalar(admin, "SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if not exists:
            log(f"creating database {name}")
            admin.execute(f'CREATE DATABASE "{name}"')
    upgrade_database(sa_url(name))
    with connect(name) as conn:
        have = scalar(conn, "SELECT count(*) FROM practitioner")
    seeded_now = False
    if have != practitioners:
        if have:
            log(f"{name} holds {have} practitioners, not {practitioners}: dropping and seeding again")
            with connect("postgres") as admin:
                admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                admin.execute(f'CREATE DATABASE "{name}"')
            upgrade_database(sa_url(name))
        log(f"seeding {name}: {practitioners} practitioners, {violations} decisions (first run only)")
        started = time.perf_counter()
        done = points_service(
            "demo",
            "seed",
            "--practitioners",
            str(practitioners),
            "--violations",
            str(violations),
            database=name,
        )
        log(f"seeded {name} in {time.perf_counter() - started:.0f} s: {done.stdout.strip().splitlines()[0]}")
        with connect(name) as conn:
            conn.execute("VACUUM ANALYZE")
        seeded_now = True
    else:
        log(f"reusing {name} ({have} practitioners)")
    with connect(name) as conn:
        counts = {
            table: scalar(conn, f"SELECT count(*) FROM {table}")
            for table in ("institution", "practitioner", "registration", "violation", "ledger_entry")
        }
        counts["bench_writes"] = scalar(conn, "SELECT count(*) FROM violation WHERE case_ref LIKE 'BENCH-%%'")
    counts["seeded_now"] = seeded_now
    return counts


def ensure_roster(name: str, workdir: Path) -> str:
    """An institution with exactly ROSTER_SIZE staff registered today, made with the CSV importer."""
    with connect(name) as conn:
        iid = scalar(conn, "SELECT id FROM institution WHERE code = %s", (ROSTER_CODE,))
        if iid is None:
            path = workdir / "roster_institution.csv"
            path.write_text(
                f"code,name,kind,region_code\n{ROSTER_CODE},基准测试医院,medical_institution,{ROSTER_REGION}\n",
                "utf-8",
            )
            points_service("import", "institutions", str(path), database=name)
            iid = scalar(conn, "SELECT id FROM institution WHERE code = %s", (ROSTER_CODE,))
        staff = _roster_count(conn, iid)
        if staff == 0:
            codes = [
                row[0]
                for row in conn.execute(
                    "SELECT practitioner_code FROM practitioner_state "
                    "WHERE announced_status = 'active' AND state::jsonb -> 'terminations' = '[]'::jsonb "
                    "ORDER BY md5(practitioner_code) LIMIT %s",
                    (ROSTER_SIZE,),
                )
            ]
            path = workdir / "roster_registrations.csv"
            path.write_text(
                "practitioner_code,institution_code,start_date\n"
                + "".join(f"{code},{ROSTER_CODE},2024-01-01\n" for code in codes),
                "utf-8",
            )
            log(f"registering {len(codes)} staff at {ROSTER_CODE} with `points-service import registrations`")
            points_service("import", "registrations", str(path), database=name)
            staff = _roster_count(conn, iid)
    if staff != ROSTER_SIZE:
        raise SystemExit(f"{ROSTER_CODE} has {staff} registered staff, not {ROSTER_SIZE}; drop {name}")
    log(f"roster institution: {ROSTER_CODE} with {staff} staff registered today (imported from CSV)")
    return ROSTER_CODE


def _roster_count(conn: psycopg.Connection, iid: int) -> int:
    return scalar(
        conn,
        "SELECT count(DISTINCT practitioner_id) FROM registration WHERE institution_id = %s "
        "AND start_date <= %s AND (end_date IS NULL OR end_date > %s)",
        (iid, today(), today()),
    )


def today() -> dt.date:
    return dt.datetime.now(SHANGHAI).date()


# -- the server -----------------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen
    metrics_dir: Path
    log_path: Path
    keys: dict[str, str] = field(default_factory=dict)

    def workers(self) -> list[int]:
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return []
        return sorted(int(c) for c in children)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(database: str, workdir: Path, workers: int = WORKERS) -> Server:
    metrics_dir = Path(tempfile.mkdtemp(prefix="metrics-", dir=workdir))
    log_path = workdir / f"gunicorn-{workers}.log"
    env = {
        **os.environ,
        "POINTS_DATABASE_URL": sa_url(database),
        "POINTS_BENCH_ENDPOINTS": "1",
        "POINTS_RATE_LIMIT": "",
        "POINTS_LOG_LEVEL": "WARNING",
        "POINTS_WEB_WORKERS": str(workers),
        "POINTS_WEB_THREADS": str(THREADS),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    env.pop("POINTS_DATABASE_READ_URL", None)
    argv = [
        str(BIN / "gunicorn"),
        "-c",
        "python:points_service.gunicorn_conf",
        "--bind",
        f"{HOST}:{PORT}",
        # no recycling during the run: the memory figure is then a worker's own after 100k requests
        "--max-requests",
        "0",
        "points_service.wsgi:app",
    ]
    with log_path.open("wb") as out:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, metrics_dir, log_path)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited ({process.returncode}):\n{log_path.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection(HOST, PORT, timeout=2)
            conn.request("GET", "/health/ready")
            if conn.getresponse().status == 200 and len(server.workers()) == workers:
                conn.close()
                log(f"gunicorn ready on {HOST}:{PORT}: master {process.pid}, workers {server.workers()}")
                return server
            conn.close()
        except OSError:
            pass
        time.sleep(0.3)
    server.stop()
    raise SystemExit(f"gunicorn did not become ready:\n{log_path.read_text()[-3000:]}")


class Client:
    """One keep-alive HTTP connection; times a request from send to the last byte read."""

    def __init__(self, key: str):
        self.headers = {"Authorization": f"Bearer {key}"}
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes, float]:
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(HOST, PORT, timeout=30)
                self.conn.connect()
            try:
                started = time.perf_counter()
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                payload = response.read()
                return response.status, payload, time.perf_counter() - started
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


# -- whose CPU ------------------------------------------------------------------------------------


HZ = os.sysconf("SC_CLK_TCK")
CORES = len(os.sched_getaffinity(0))


def _busy_jiffies() -> int:
    """Every CPU's busy time (user, nice, system, irq, softirq, steal) from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq + steal


def _proc_jiffies(pid: int, children: bool = False) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    own = int(stat[11]) + int(stat[12])
    return own + (int(stat[13]) + int(stat[14]) if children else 0)


class CpuWatch:
    """How much of the machine's CPU went to processes that are not this benchmark's.

    Ours: this script and the children it waited for (wrk, pyload, points-service), gunicorn and its
    workers, and PostgreSQL's background processes and its backends for the points_bench databases.
    The rest of the busy time in /proc/stat (other processes, and steal) is foreign load, which the
    report states, since 2 cores shared with anything else make every figure pessimistic.
    """

    def __init__(self) -> None:
        self.server: Server | None = None
        self.phases: list[tuple[str, float]] = []
        self._mark: tuple[float, int, int] | None = None

    def ours(self) -> int:
        """This benchmark's CPU so far, in jiffies (see the class docstring for whose)."""
        total = _proc_jiffies(os.getpid(), children=True)
        if self.server is not None:
            total += _proc_jiffies(self.server.process.pid, children=True)
            total += sum(_proc_jiffies(pid) for pid in self.server.workers())
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if cmdline.startswith("postgres:"):
                backend = "(" in cmdline or "[local]" in cmdline
                if not backend or "points_bench" in cmdline:
                    total += _proc_jiffies(int(entry.name))
        return total

    def start(self) -> None:
        self._mark = (time.monotonic(), _busy_jiffies(), self.ours())

    def stop(self, phase: str) -> float:
        """The foreign share of the machine's CPU since start(), in percent."""
        assert self._mark is not None
        began, busy, ours = self._mark
        elapsed = time.monotonic() - began
        capacity = elapsed * HZ * CORES
        foreign = max(0, (_busy_jiffies() - busy) - (self.ours() - ours))
        share = 100.0 * foreign / capacity if capacity else 0.0
        self.phases.append((phase, share))
        log(f"  other processes used {share:.0f}% of the CPU during: {phase}")
        return share


CPU = CpuWatch()


# -- load generation ------------------------------------------------------------------------------


def ensure_wrk() -> str | None:
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt and os.geteuid() == 0:
        log("wrk is missing: apt-get install -y wrk")
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run([apt, "install", "-y", "wrk"], env=env, **quiet).returncode != 0:
            subprocess.run([apt, "update"], env=env, **quiet)
            subprocess.run([apt, "install", "-y", "wrk"], env=env, **quiet)
    found = shutil.which("wrk")
    if not found:
        log("wrk is not available: using bench/pyload.py (a Python load generator) instead")
    return found


@dataclass
class Load:
    wrk: str | None
    connections: int = 8

    def _parse(self, output: str) -> dict[str, Any]:
        for line in output.splitlines():
            if line.startswith("BENCH_JSON "):
                result = json.loads(line.removeprefix("BENCH_JSON "))
                result["seconds"] = result["duration_us"] / 1e6
                result["rps"] = result["requests"] / result["seconds"] if result["seconds"] else 0.0
                result["errors"] = sum(
                    result[k]
                    for k in (
                        "errors_connect",
                        "errors_read",
                        "errors_write",
                        "errors_status",
                        "errors_timeout",
                    )
                )
                return result
        raise SystemExit(f"the load generator printed no result:\n{output[-3000:]}")

    @property
    def name(self) -> str:
        return "wrk" if self.wrk else "bench/pyload.py"

    def run(self, mode: str, duration: float, env: dict[str, str]) -> dict[str, Any]:
        """wrk when it is there (it costs the shared cores far less CPU per request than a Python
        client), else bench/pyload.py. wrk drops the answers still in flight when it stops;
        pyload waits for them."""
        if self.wrk:
            script = BENCH / ("get_random.lua" if mode == "get" else "post_violations.lua")
            threads = min(2, self.connections)  # wrk needs a connection per thread
            argv = [
                self.wrk,
                f"-t{threads}",
                f"-c{self.connections}",
                f"-d{max(1, round(duration))}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                f"http://{HOST}:{PORT}",
            ]
            env = {**env, "BENCH_THREADS": str(threads)}
        else:
            argv = [sys.executable, str(BENCH / "pyload.py"), mode, "--key", env["BENCH_KEY"]]
            argv += ["--connections", str(self.connections), "--duration", str(duration), "--port", str(PORT)]
            if mode == "get":
                argv += ["--paths", env["BENCH_PATHS"]]
            else:
                argv += ["--people", env["BENCH_PEOPLE"], "--prefix", env["BENCH_PREFIX"]]
                argv += ["--decided", env["BENCH_DECIDED"]]
        done = subprocess.run(
            argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=duration + 120
        )
        if done.returncode != 0:
            raise SystemExit(f"{argv[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return self._parse(done.stdout)


def cpu_per_request(
    load: Load, mode: str, duration: float, env: dict[str, str]
) -> tuple[dict[str, Any], float]:
    """A run and the seconds of CPU this benchmark's processes (gunicorn, PostgreSQL, wrk) spent
    per answered request. On one connection nothing waits on anything else, so this is what one
    request costs the machine: a lower bound on its cost under load, where the processes also
    contend for the cores, their caches and the GIL."""
    before = CPU.ours()
    result = load.run(mode, duration, env)
    spent = (CPU.ours() - before) / HZ
    return result, spent / max(1, result["requests"])


# -- the measures ---------------------------------------------------------------------------------


@dataclass
class Row:
    measure: str
    value: str
    floor: str = "—"
    ratio: str = "—"
    target: str = "—"
    ok: bool | None = None
    short: str = ""

    @property
    def verdict(self) -> str:
        return "—" if self.ok is None else ("pass" if self.ok else "**FAIL**")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def sample_people(name: str, n: int) -> list[tuple[int, str]]:
    with connect(name) as conn:
        return [
            (pid, code)
            for pid, code in conn.execute(
                "SELECT practitioner_id, practitioner_code FROM practitioner_state "
                "ORDER BY random() LIMIT %s",
                (n,),
            )
        ]


def bench_single_get(load: Load, key: str, people: list[tuple[int, str]], workdir: Path, duration: float):
    elig = workdir / "eligibility_paths.txt"
    floor = workdir / "floor_paths.txt"
    bare = workdir / "bare_paths.txt"
    elig.write_text("".join(f"/v1/practitioners/{code}/eligibility\n" for _, code in people))
    floor.write_text("".join(f"/bench/floor/{pid}\n" for pid, _ in people))
    bare.write_text("/health/live\n")
    client = Client(key)
    for path in (elig, floor, bare):
        first = path.read_text().split("\n", 1)[0]
        status, body, _ = client.request("GET", first)
        if status != 200:
            raise SystemExit(f"GET {first} answered {status}: {body[:500]!r}")
    client.close()
    log("single GET: warming up (5 s each)")
    load.run("get", 5, {"BENCH_PATHS": str(floor), "BENCH_KEY": key})
    load.run("get", 5, {"BENCH_PATHS": str(elig), "BENCH_KEY": key})
    # rounds of floor, eligibility, eligibility, floor: this machine's speed drifts by a third
    # within a minute, and short alternating runs make the drift weigh on both alike. Each round
    # ends with the bare server (a health check: no key, no database), whose p99 is what the
    # server stack alone gives on this machine, below which no endpoint of the app can go
    each = duration / (2 * ROUNDS)
    log(
        f"single GET: {ROUNDS} × (floor, eligibility, eligibility, floor, bare), {each:.1f} s each, "
        "8 connections"
    )
    paths = {"floor": floor, "eligibility": elig, "bare": bare}
    runs: dict[str, list[dict[str, Any]]] = {which: [] for which in paths}
    for which in ("floor", "eligibility", "eligibility", "floor", "bare") * ROUNDS:
        runs[which].append(load.run("get", each, {"BENCH_PATHS": str(paths[which]), "BENCH_KEY": key}))
    f, e, b = _merge(runs["floor"]), _merge(runs["eligibility"]), _merge(runs["bare"])
    log(
        f"  floor {f['rps']:.0f} req/s p50 {f['p50_us'] / 1000:.2f} ms p99 {f['p99_us'] / 1000:.2f} ms; "
        f"eligibility {e['rps']:.0f} req/s p50 {e['p50_us'] / 1000:.2f} ms p99 {e['p99_us'] / 1000:.2f} ms; "
        f"bare {b['rps']:.0f} req/s p50 {b['p50_us'] / 1000:.2f} ms p99 {b['p99_us'] / 1000:.2f} ms; "
        f"errors {f['errors']}/{e['errors']}/{b['errors']}; runs (req/s, p50, p99): floor {f['runs']}, "
        f"eligibility {e['runs']}, bare {b['runs']}"
    )
    # what one request costs the machine, on one connection: with 8 connections always busy on
    # these cores, a request's mean wait can be no less than 8 × that cost ÷ cores (Little's law),
    # which bounds the p99 from below whatever the code does with its share
    one = replace(load, connections=1)
    cost = {
        which: cpu_per_request(one, "get", each, {"BENCH_PATHS": str(paths[which]), "BENCH_KEY": key})
        for which in ("floor", "eligibility")
    }
    (fo, f_cost), (eo, e_cost) = cost["floor"], cost["eligibility"]
    log(
        f"  one connection: floor {fo['rps']:.0f} req/s, {f_cost * 1000:.2f} ms CPU a request; "
        f"eligibility {eo['rps']:.0f} req/s, {e_cost * 1000:.2f} ms CPU a request ({CORES} cores)"
    )
    ratio = e["rps"] / f["rps"]
    rows = [
        Row(
            f"Single eligibility GET, 8 connections, {duration:.0f} s each in {2 * ROUNDS} runs "
            f"({ROUNDS} × floor, real, real, floor, bare): throughput",
            f"{e['rps']:.0f} req/s",
            f"{f['rps']:.0f} req/s",
            f"{ratio:.2f}×",
            "≥ 0.8× floor",
            ratio >= 0.8 and e["errors"] == 0,
            short="single GET throughput",
        ),
        Row(
            "Single eligibility GET: p50 latency (mean of the runs')",
            f"{e['p50_us'] / 1000:.2f} ms",
            f"{f['p50_us'] / 1000:.2f} ms",
            f"{e['p50_us'] / f['p50_us']:.2f}×",
        ),
        Row(
            "Single eligibility GET: p99 latency (median of the runs'; worst run "
            f"{e['p99_worst_us'] / 1000:.1f} ms, floor {f['p99_worst_us'] / 1000:.1f} ms)",
            f"{e['p99_us'] / 1000:.2f} ms",
            f"{f['p99_us'] / 1000:.2f} ms",
            f"{e['p99_us'] / f['p99_us']:.2f}×",
            "≤ 15 ms",
            e["p99_us"] <= 15_000,
            short="single GET p99",
        ),
        Row(
            f"Bare server, same 8 connections, {ROUNDS} runs of {each:.0f} s: `GET /health/live` (no key, "
            "no database; only the request hooks, JSON log and metrics): p99 latency (median of the "
            f"runs'; worst run {b['p99_worst_us'] / 1000:.1f} ms) at {b['rps']:.0f} req/s, p50 "
            f"{b['p50_us'] / 1000:.2f} ms",
            f"{b['p99_us'] / 1000:.2f} ms",
            target="— (the lowest p99 any endpoint of this server can have here)",
        ),
        Row(
            f"Cost of one GET: one connection, {each:.0f} s each; CPU of gunicorn, PostgreSQL and "
            f"{load.name} per request (p50 {eo['p50_us'] / 1000:.2f} ms, floor "
            f"{fo['p50_us'] / 1000:.2f} ms). With 8 connections always busy on {CORES} cores, the mean "
            f"latency can be no lower than 8 × cost ÷ {CORES}: {8 * e_cost / CORES * 1000:.1f} ms "
            f"(floor {8 * f_cost / CORES * 1000:.1f} ms)",
            f"{e_cost * 1000:.2f} ms",
            f"{f_cost * 1000:.2f} ms",
            f"{e_cost / f_cost:.2f}×",
            "— (a p99 ≤ 15 ms needs a mean well below 15 ms)",
        ),
    ]
    served = e["requests"] + f["requests"] + b["requests"] + eo["requests"] + fo["requests"]
    return rows, served, {"eligibility": e, "floor": f, "bare": b}


def _merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Runs as one: requests over time; p50 the mean of the runs', p99 the median run's (wrk
    reports percentiles, not histograms, so the runs' latencies cannot be pooled exactly)."""
    seconds = sum(r["seconds"] for r in results)
    requests = sum(r["requests"] for r in results)
    return {
        "requests": requests,
        "seconds": seconds,
        "rps": requests / seconds,
        "errors": sum(r["errors"] for r in results),
        "p50_us": statistics.mean(r["p50_us"] for r in results),
        "p99_us": statistics.median(r["p99_us"] for r in results),
        "p99_worst_us": max(r["p99_us"] for r in results),
        "runs": [
            (round(r["rps"]), round(r["p50_us"] / 1000, 2), round(r["p99_us"] / 1000, 2)) for r in results
        ],
    }


def alternate(
    iterations: int, warmup: int, first: Callable[[int], float], second: Callable[[int], float]
) -> tuple[list[float], list[float]]:
    """Run both `iterations` times (after `warmup` unrecorded rounds), swapping the order each time."""
    a: list[float] = []
    b: list[float] = []
    for i in range(warmup + iterations):
        if i % 2:
            tb, ta = second(i), first(i)
        else:
            ta, tb = first(i), second(i)
        if i >= warmup:
            a.append(ta)
            b.append(tb)
    return a, b


def bench_batch(key: str, codes: list[str], iterations: int) -> tuple[list[Row], int]:
    client = Client(key)
    rng = random.Random(6)
    batches = [rng.sample(codes, 1000) for _ in range(iterations + 3)]

    def real(i: int) -> float:
        status, body, seconds = client.request(
            "POST", "/v1/eligibility/batch", {"practitioner_codes": batches[i]}
        )
        results = json.loads(body).get("results", []) if status == 200 else []
        if status != 200 or len(results) != 1000 or any(r["status"] == "unknown" for r in results):
            raise SystemExit(f"batch answered {status} with {len(results)} results: {body[:300]!r}")
        return seconds

    def floor(i: int) -> float:
        status, body, seconds = client.request(
            "POST", "/bench/floor/batch", {"practitioner_codes": batches[i]}
        )
        results = json.loads(body).get("results", []) if status == 200 else []
        if status != 200 or len(results) != 1000:
            raise SystemExit(f"floor batch answered {status} with {len(results)} rows: {body[:300]!r}")
        return seconds

    log(f"batch of 1000 codes: {iterations} sequential requests each (alternating with the floor)")
    r, f = alternate(iterations, 3, real, floor)
    client.close()
    mr, mf = statistics.median(r), statistics.median(f)
    log(f"  batch median {ms(mr)} (p90 {ms(_p(r, 90))}), floor median {ms(mf)} (p90 {ms(_p(f, 90))})")
    row = Row(
        f"Batch eligibility, 1000 codes: median of {iterations} (p90 {ms(_p(r, 90))})",
        ms(mr),
        f"{ms(mf)} (p90 {ms(_p(f, 90))})",
        f"{mr / mf:.2f}×",
        "≤ 2.5× floor",
        mr <= 2.5 * mf,
        short="batch of 1000",
    )
    return [row], 2 * (iterations + 3)


def _p(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


_CURSOR = re.compile(rb'"next_cursor":\s*(null|"([^"]*)")\s*}\s*$')


def bench_roster(key: str, code: str, iterations: int) -> tuple[list[Row], int]:
    client = Client(key)
    pages_seen: list[int] = []
    requests = 0

    def real(_: int) -> float:
        nonlocal requests
        cursor, total, pages, bodies = None, 0.0, 0, []
        while True:
            path = f"/v1/institutions/{code}/eligibility?limit=500" + (f"&cursor={cursor}" if cursor else "")
            status, body, seconds = client.request("GET", path)
            total += seconds
            pages += 1
            if status != 200:
                raise SystemExit(f"GET {path} answered {status}: {body[:300]!r}")
            bodies.append(body)
            # the cursor is the body's last field: read it without parsing the page (client cost)
            found = _CURSOR.search(body)
            if found is None:
                raise SystemExit(f"no next_cursor at the end of {body[-200:]!r}")
            cursor = found.group(2).decode() if found.group(2) else None
            if cursor is None:
                break
        requests += pages
        items = sum(len(json.loads(b)["items"]) for b in bodies)
        if items != ROSTER_SIZE:
            raise SystemExit(f"the roster of {code} gave {items} people, not {ROSTER_SIZE}")
        pages_seen.append(pages)
        return total

    def floor(_: int) -> float:
        nonlocal requests
        status, body, seconds = client.request("GET", f"/bench/floor/roster/{code}")
        requests += 1
        rows = len(json.loads(body)["results"]) if status == 200 else 0
        if rows != ROSTER_SIZE:
            raise SystemExit(f"the floor roster answered {status} with {rows} rows: {body[:300]!r}")
        return seconds

    log(f"roster of {ROSTER_SIZE}: {iterations} fetches of every page vs the floor's one request")
    r, f = alternate(iterations, 3, real, floor)
    client.close()
    mr, mf = statistics.median(r), statistics.median(f)
    pages = max(pages_seen)
    log(f"  roster ({pages} pages) median {ms(mr)}, floor (1 request) median {ms(mf)}")
    row = Row(
        f"Roster of {ROSTER_SIZE} staff: all {pages} pages of 500 (sequential), median of {iterations}",
        ms(mr),
        f"{ms(mf)} (1 request, {ROSTER_SIZE} rows)",
        f"{mr / mf:.2f}×",
        "≤ 2.5× floor",
        mr <= 2.5 * mf,
        short="roster of 2000",
    )
    return [row], requests


def bench_writes(load: Load, key: str, name: str, workdir: Path, duration: float) -> tuple[list[Row], int]:
    day = today()
    prefix = f"BENCH-{dt.datetime.now(SHANGHAI):%Y%m%dT%H%M%S}-{random.randrange(16**4):04x}"
    with connect(name) as conn:
        people = conn.execute(
            """
            SELECT code, inst, start FROM (
                SELECT DISTINCT ON (s.practitioner_id)
                       s.practitioner_code AS code, i.code AS inst, r.start_date AS start,
                       md5(s.practitioner_code || %(salt)s) AS h
                FROM practitioner_state s
                JOIN registration r ON r.practitioner_id = s.practitioner_id
                JOIN institution i ON i.id = r.institution_id
                WHERE s.announced_status = 'active'
                  AND r.end_date IS NULL AND r.start_date <= %(cutoff)s AND i.code <> %(roster)s
                  AND NOT EXISTS (SELECT 1 FROM violation v
                                  WHERE v.practitioner_id = s.practitioner_id AND v.case_ref LIKE 'BENCH-%%')
                ORDER BY s.practitioner_id, r.id
            ) x ORDER BY h LIMIT 60000
            """,
            {"salt": prefix, "cutoff": day - dt.timedelta(days=30), "roster": ROSTER_CODE},
        ).fetchall()
        before = scalar(conn, "SELECT count(*) FROM violation")
        # start from a clean checkpoint, so that a timed one (every checkpoint_timeout, 5 min by
        # default) does not fall inside the 15 s: its flush stalled commits for up to a second,
        # which measured the disk at that moment rather than the service
        conn.execute("CHECKPOINT")
    occurred = (day - dt.timedelta(days=7)).isoformat()
    path = workdir / "write_people.txt"
    path.write_text("".join(f"{code} {inst} {occurred}\n" for code, inst, _ in people))
    log(
        f"violation writes: 8 clients for {duration:.0f} s, case_refs {prefix}-*, "
        f"{len(people)} distinct registered people, decided {day}, occurred {occurred}"
    )
    w = load.run(
        "violations",
        duration,
        {
            "BENCH_PEOPLE": str(path),
            "BENCH_KEY": key,
            "BENCH_PREFIX": prefix,
            "BENCH_DECIDED": day.isoformat(),
        },
    )
    time.sleep(1)
    created = w["status_201"]
    rate = created / w["seconds"]
    with connect(name) as conn:
        rows = scalar(conn, "SELECT count(*) FROM violation WHERE case_ref LIKE %s", (prefix + "-%",))
        after = scalar(conn, "SELECT count(*) FROM violation")
        entries = scalar(
            conn,
            "SELECT count(*) FROM ledger_entry l JOIN violation v ON v.id = l.violation_id "
            "WHERE v.case_ref LIKE %s AND l.kind = 'decision'",
            (prefix + "-%",),
        )
        touched = scalar(
            conn,
            "SELECT count(DISTINCT practitioner_id) FROM violation WHERE case_ref LIKE %s",
            (prefix + "-%",),
        )
        mismatched = scalar(
            conn,
            """
            WITH people AS (
                SELECT DISTINCT practitioner_id FROM violation WHERE case_ref LIKE %(p)s
            ), ledger AS (
                SELECT l.practitioner_id, l.score_year, SUM(l.points) AS points
                FROM ledger_entry l JOIN people USING (practitioner_id)
                GROUP BY l.practitioner_id, l.score_year
            ), snap AS (
                SELECT s.practitioner_id, (y ->> 'year')::int AS score_year,
                       (y ->> 'points_recorded')::int - (y ->> 'points_repaired')::int AS points
                FROM practitioner_state s JOIN people USING (practitioner_id),
                     jsonb_array_elements(s.state::jsonb -> 'years') AS y
            )
            SELECT count(*) FROM ledger FULL JOIN snap USING (practitioner_id, score_year)
            WHERE COALESCE(ledger.points, 0) <> COALESCE(snap.points, 0)
            """,
            {"p": prefix + "-%"},
        )
    # wrk stops with up to one request per connection in flight: written, but its 201 never read
    in_flight = load.connections if load.wrk else 0
    lost_or_double = not created <= rows <= created + in_flight or entries != rows or after - before != rows
    log(
        f"  {created} x 201 in {w['seconds']:.1f} s = {rate:.0f}/s (p50 {w['p50_us'] / 1000:.1f} ms, "
        f"p99 {w['p99_us'] / 1000:.1f} ms); other answers: 200 {w['status_200']}, 4xx {w['status_4xx']}, "
        f"5xx {w['status_5xx']}, socket errors {w['errors'] - w['errors_status']}; new rows {rows}, "
        f"ledger entries {entries}, people {touched}, person-years differing from the ledger {mismatched}"
    )
    # what one write costs the machine, on one client and to people the run above did not touch
    # (the list backwards): the cores divided by that cost is the most writes a second this
    # machine could take if nothing contended, an upper bound on the 8-client rate
    solo_path = workdir / "write_people_solo.txt"
    solo_path.write_text("".join(f"{code} {inst} {occurred}\n" for code, inst, _ in reversed(people)))
    solo, cost = cpu_per_request(
        replace(load, connections=1),
        "violations",
        SOLO_SECONDS,
        {
            "BENCH_PEOPLE": str(solo_path),
            "BENCH_KEY": key,
            "BENCH_PREFIX": f"{prefix}S",
            "BENCH_DECIDED": day.isoformat(),
        },
    )
    ceiling = CORES / cost
    log(
        f"  one client: {solo['status_201']} x 201 in {solo['seconds']:.1f} s "
        f"(p50 {solo['p50_us'] / 1000:.1f} ms), "
        f"{cost * 1000:.2f} ms CPU a write: at most {ceiling:.0f}/s on {CORES} cores"
    )
    return [
        Row(
            f"Violation writes, 8 concurrent clients ({load.name}, 8 keep-alive connections), "
            f"{w['seconds']:.0f} s, each to a different person "
            f"(p50 {w['p50_us'] / 1000:.1f} ms, p99 {w['p99_us'] / 1000:.1f} ms)",
            f"{rate:.0f} writes/s",
            target=f"≥ {WRITES_TARGET}/s",
            ok=rate >= WRITES_TARGET and w["status_4xx"] + w["status_5xx"] == 0,
            short="violation writes/s",
        ),
        Row(
            f"…then: 201 answers vs new violation rows vs decision ledger entries; "
            f"person-years of the {touched} people whose snapshot ≠ ledger recount"
            + (f" (up to {in_flight} requests were in flight when wrk stopped)" if in_flight else ""),
            f"{created} / {rows} / {entries}; {mismatched} differ",
            target="rows = entries = 201s (+ in flight); 0 differ (0 lost, 0 double)",
            ok=not lost_or_double and mismatched == 0,
            short="writes: zero lost, zero double",
        ),
        Row(
            f"Cost of one write: one client, {solo['seconds']:.0f} s, to other people; CPU of gunicorn, "
            f"PostgreSQL and {load.name} per write (p50 {solo['p50_us'] / 1000:.1f} ms, "
            f"{solo['status_201']} x 201, {solo['status_4xx'] + solo['status_5xx']} errors). "
            f"{CORES} cores ÷ cost = the most writes a second this machine could take with no contention",
            f"{cost * 1000:.2f} ms → at most {ceiling:.0f}/s",
            target=f"— (≥ {WRITES_TARGET}/s needs a cost ≤ {CORES / WRITES_TARGET * 1000:.1f} ms)",
        ),
    ], w["requests"] + solo["requests"]


def time_job(name: str, job: str, day: dt.date, repeats: int) -> tuple[float, dict[str, Any]]:
    """Median wall time of `run_job(job, today=day)`, in a transaction rolled back afterwards so that
    every run (and every rerun of the benchmark) sweeps the same data."""
    from sqlalchemy.orm import sessionmaker

    from points_service.persistence.engine import make_engine
    from points_service.persistence.pii import PiiKeys
    from points_service.services.sweeps import run_job
    from points_service.settings import Settings

    settings = Settings(database_url=sa_url(name))
    pii = PiiKeys.from_settings(settings.encryption_keys, settings.index_key)
    engine = make_engine(settings.database_url)
    now = dt.datetime.combine(day, dt.time(0, 5), SHANGHAI).astimezone(dt.UTC)
    times, result = [], {}
    try:
        for _ in range(repeats):
            with engine.connect() as conn:
                outer = conn.begin()
                sessions = sessionmaker(
                    bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False
                )
                started = time.perf_counter()
                result = run_job(sessions, job, settings=settings, pii=pii, now=now, today=day)
                times.append(time.perf_counter() - started)
                outer.rollback()
    finally:
        engine.dispose()
    return statistics.median(times), result


def bench_sweeps(small_people: int, big_people: int) -> list[Row]:
    new_year = dt.date(today().year + 1, 1, 1)
    tomorrow = today() + dt.timedelta(days=1)
    log(f"roll-over-year (today={new_year}) and announce-transitions (today={tomorrow}) on both databases")
    roll_small, _ = time_job(SMALL, "roll-over-year", new_year, 5)
    roll_big, roll_result = time_job(BIG, "roll-over-year", new_year, 5)
    ann_small, ann_small_result = time_job(SMALL, "announce-transitions", tomorrow, 3)
    ann_big, ann_big_result = time_job(BIG, "announce-transitions", tomorrow, 3)
    log(
        f"  roll-over {ms(roll_small)} vs {ms(roll_big)} ({roll_result}); announce-transitions "
        f"{ms(ann_small)} ({ann_small_result}) vs {ms(ann_big)} ({ann_big_result})"
    )
    grows = roll_big > 2 * roll_small + 0.020
    return [
        Row(
            f"1 January rollover, `run_job(roll-over-year, today={new_year})`: "
            f"{big_people:,} people (floor column: {small_people:,}); median of 5",
            ms(roll_big),
            ms(roll_small),
            f"{roll_big / roll_small:.2f}×",
            f"no growth with {big_people // small_people}× the people (≤ 2× + 20 ms)",
            not grows,
            short="1 January rollover",
        ),
        Row(
            f"Transitions sweep for tomorrow, `announce-transitions` ({tomorrow}): {big_people:,} people, "
            f"{ann_big_result.get('due', '?')} due (floor column: {small_people:,}, "
            f"{ann_small_result.get('due', '?')} due); median of 3",
            ms(ann_big),
            ms(ann_small),
            f"{ann_big / ann_small:.2f}×",
            "reported (scales with the people due, not with everyone)",
        ),
    ]


def served_by_worker(server: Server, pids: Sequence[int]) -> dict[int, int]:
    """Each worker's own request count, from its prometheus_client multiprocess file."""
    from prometheus_client.mmap_dict import MmapedDict

    served = {}
    for pid in pids:
        path = server.metrics_dir / f"counter_{pid}.db"
        total = 0.0
        if path.exists():
            for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
                if json.loads(key)[1] == "points_http_requests_total":
                    total += value
        served[pid] = int(total)
    return served


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise SystemExit(f"no VmRSS for {pid}")


def bench_memory(
    load: Load,
    server: Server,
    key: str,
    people: list[tuple[int, str]],
    workdir: Path,
    requests: int,
    max_seconds: float,
) -> tuple[list[Row], int]:
    rng = random.Random(7)
    year = today().year
    lines = []
    for pid, code in people[:100_000]:
        roll = rng.random()
        if roll < 0.50:
            lines.append(f"/v1/practitioners/{code}/eligibility")
        elif roll < 0.65:
            at = dt.date(year, 1, 1) + dt.timedelta(days=rng.randrange(300))
            lines.append(f"/v1/practitioners/{code}/eligibility?at={at}")
        elif roll < 0.72:
            lines.append(f"/v1/practitioners/{code}/eligibility?institution_code={ROSTER_CODE}")
        elif roll < 0.82:
            lines.append(f"/v1/practitioners/{code}/standing")
        elif roll < 0.87:
            lines.append(f"/v1/practitioners/X{code}/eligibility")  # unknown: 404
        else:
            lines.append(f"/bench/floor/{pid}")
    path = workdir / "mixed_paths.txt"
    path.write_text("\n".join(lines) + "\n")
    env = {"BENCH_PATHS": str(path), "BENCH_KEY": key}
    (pid,) = server.workers()
    log(
        f"memory: one worker; mixed eligibility GETs (50% plain, 15% ?at=, 7% ?institution_code=, "
        f"10% standing, 5% unknown code, 13% floor), 5 s of warm-up, then until it has served {requests:,}"
    )
    sent = load.run("get", 5, env)["requests"]
    baseline = rss_mb(pid)
    deadline = time.monotonic() + max_seconds
    rate = 400.0
    while True:
        served = served_by_worker(server, [pid])[pid]
        behind = requests - served
        if behind <= 0 or time.monotonic() >= deadline:
            break
        chunk = min(60.0, max(5.0, behind / rate * 1.05), deadline - time.monotonic() + 1)
        result = load.run("get", chunk, env)
        sent += result["requests"]
        rate = max(100.0, result["rps"])
        log(
            f"  {result['requests']} requests at {result['rps']:.0f}/s; "
            f"served so far {served_by_worker(server, [pid])[pid]:,}"
        )
    served = served_by_worker(server, [pid])[pid]
    restarted = server.workers() != [pid]
    size = rss_mb(pid)
    log(
        f"  RSS {size:.1f} MB after {served:,} requests (after the warm-up: {baseline:.1f} MB); "
        f"restarted: {restarted}"
    )
    reached = served >= requests and not restarted
    row = Row(
        f"Web worker resident size (VmRSS) after ≥ {requests:,} requests, no recycling: one worker × "
        f"{THREADS} threads taking every request; {served:,} served (after the warm-up: {baseline:.0f} MB)",
        f"{size:.0f} MB",
        target="≤ 150 MB",
        ok=size <= 150 if reached else None,
        short="worker memory",
    )
    if not reached:
        row.measure += f" — INCOMPLETE: it did not reach {requests:,} requests within the time bound" + (
            " (the worker restarted)" if restarted else ""
        )
    return [row], sent


# -- the report -----------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "?",
    )
    with connect("postgres") as conn:
        pg_version = scalar(conn, "SHOW server_version")
    wrk = shutil.which("wrk")
    wrk_version = (
        subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.split("\n", 1)[0].split(" [")[0]
        if wrk
        else "bench/pyload.py"
    )
    return {
        "cores": str(CORES),
        "cpu": model,
        "ram": f"{mem_kb / 1024 / 1024:.0f} GiB",
        "kernel": platform.release(),
        "postgresql": pg_version,
        "python": platform.python_version(),
        "load": wrk_version,
    }


def wait_quiet(seconds: float) -> None:
    """Wait until other processes use less than 10% of the CPU over 10 s (at most `seconds`)."""
    deadline = time.monotonic() + seconds
    while True:
        CPU.start()
        time.sleep(10)
        share = CPU.stop("the wait for a quiet machine")
        CPU.phases.pop()
        if share < 10 or time.monotonic() >= deadline:
            return
        log("waiting for a quiet machine")


def render(
    rows: list[Row], info: dict[str, str], big: dict[str, Any], small: dict[str, Any], extra: str
) -> str:
    head = [
        "# points_service benchmark (issue 6)",
        "",
        f"- **Date:** {dt.datetime.now(SHANGHAI):%Y-%m-%d %H:%M} Asia/Shanghai",
        f"- **Machine:** {info['cores']} cores ({info['cpu']}), {info['ram']} RAM, Linux {info['kernel']}, "
        f"PostgreSQL {info['postgresql']}, Python {info['python']}",
        f"- **Dataset** (`{BIG}`): {big['practitioner']:,} practitioners, "
        f"{big['institution']:,} institutions, "
        f"{big['registration']:,} registrations, {big['violation'] - big['bench_writes']:,} decisions seeded"
        f" (+{big['bench_writes']:,} written by earlier bench runs), "
        f"{big['ledger_entry']:,} ledger entries at the "
        f"start; `{SMALL}`: {small['practitioner']:,} practitioners, {small['violation']:,} decisions",
        f"- **Server:** gunicorn on {HOST}:{PORT}, {WORKERS} workers × {THREADS} threads (gthread), "
        f"authentication on (Bearer key), rate limiter off, worker recycling off, logs at WARNING; "
        f"PostgreSQL on the same machine",
        f"- **Load:** {info['load']} in its own process, 8 connections on loopback; batch and roster from "
        f"one sequential keep-alive client in bench/run.py",
        "",
        "| Measure | Value | Floor | Ratio | Target | Result |",
        "|---|---|---|---|---|---|",
    ]
    body = [f"| {r.measure} | {r.value} | {r.floor} | {r.ratio} | {r.target} | {r.verdict} |" for r in rows]
    failed = [r.short or r.measure[:40] for r in rows if r.ok is False]
    tail = [
        "",
        f"Floor: the same app, authentication and serialisation doing one primary-key read "
        f"(`GET /bench/floor/<id>`), one query for the same 1000 rows (`POST /bench/floor/batch`), or one "
        f"query for the {ROSTER_SIZE} roster rows in one response "
        f"(`GET /bench/floor/roster/<code>`); the real "
        f"roster is paginated (at most 500 a page), so its figure is the time to fetch all "
        f"{ROSTER_SIZE // 500} pages one after another.",
        extra,
        "",
        f"**{len([r for r in rows if r.ok])} of {len([r for r in rows if r.ok is not None])} targets met**"
        + (f"; missed: {'; '.join(failed)}." if failed else "."),
    ]
    return "\n".join(head + body + tail) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="points_bench", help="the big database (default %(default)s)")
    parser.add_argument("--small-database", default="points_bench_small", help="default %(default)s")
    parser.add_argument("--practitioners", type=int, default=1_000_000)
    parser.add_argument("--violations", type=int, default=200_000)
    parser.add_argument("--small-practitioners", type=int, default=10_000)
    parser.add_argument("--small-violations", type=int, default=2_000)
    parser.add_argument(
        "--duration", type=float, default=30.0, help="seconds of single GETs for each of real and floor"
    )
    parser.add_argument("--write-duration", type=float, default=15.0)
    parser.add_argument("--batch-iterations", type=int, default=50)
    parser.add_argument("--roster-iterations", type=int, default=30)
    parser.add_argument("--memory-requests", type=int, default=100_000, help="requests the one worker serves")
    parser.add_argument("--memory-max-seconds", type=float, default=600.0)
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        help="wait up to this many seconds for other processes to use < 10%% CPU",
    )
    parser.add_argument("--keep-server", action="store_true", help="leave gunicorn running (profiling)")
    parser.add_argument("--output", type=Path, default=BENCH / "results.md")
    args = parser.parse_args()
    global BIG, SMALL
    BIG, SMALL = args.database, args.small_database

    os.chdir(ROOT)
    if args.wait_quiet:
        wait_quiet(args.wait_quiet)
    info = machine()
    log(f"machine: {info}")
    workdir = Path(tempfile.mkdtemp(prefix="points-bench-"))
    big = ensure_database(BIG, args.practitioners, args.violations)
    small = ensure_database(SMALL, args.small_practitioners, args.small_violations)
    roster_code = ensure_roster(BIG, workdir)
    admin = points_service(
        "keys", "create", "--role", "admin", "--name", "bench", database=BIG
    ).stdout.strip()
    hr = points_service(
        "keys",
        "create",
        "--role",
        "hr_system",
        "--institution",
        roster_code,
        "--name",
        "bench-hr",
        database=BIG,
    ).stdout.strip()
    load = Load(ensure_wrk())
    people = sample_people(BIG, 100_000)
    codes = [code for _, code in people]

    rows: list[Row] = []
    server = start_server(BIG, workdir)
    CPU.server = server
    served_total = 0
    try:
        CPU.start()
        single, n, _ = bench_single_get(load, admin, people, workdir, args.duration)
        CPU.stop("single GETs")
        served_total += n
        rows += single
        CPU.start()
        batch, n = bench_batch(admin, codes, args.batch_iterations)
        CPU.stop("batch")
        rows += batch
        served_total += n
        CPU.start()
        roster, n = bench_roster(hr, roster_code, args.roster_iterations)
        CPU.stop("roster")
        rows += roster
        served_total += n
        CPU.start()
        writes, n = bench_writes(load, admin, BIG, workdir, args.write_duration)
        CPU.stop("writes")
        rows += writes
        served_total += n
    finally:
        if not args.keep_server:
            server.stop()
            log("gunicorn stopped")
        else:
            log(f"gunicorn left running: master {server.process.pid}, workers {server.workers()}")
    if not args.keep_server:
        # a gunicorn of one worker (same config and threads), so that one worker takes every
        # request: with several, keep-alive connections stay with whichever worker accepted them,
        # and some workers took far longer than others to reach the count
        server = start_server(BIG, workdir, workers=1)
        CPU.server = server
        try:
            CPU.start()
            memory, n = bench_memory(
                load, server, admin, people, workdir, args.memory_requests, args.memory_max_seconds
            )
            CPU.stop("memory")
            served_total += n
        finally:
            server.stop()
            log("gunicorn (memory) stopped")
    rows += bench_sweeps(small["practitioner"], big["practitioner"])
    rows += memory if not args.keep_server else []
    extra = (
        f"About {served_total:,} requests were sent in all; the run took {time.monotonic() - STARTED:.0f} s."
    )
    foreign = ", ".join(f"{phase} {share:.0f}%" for phase, share in CPU.phases)
    extra += (
        f" Share of the machine's CPU used by processes other than this benchmark's (other work on the "
        f"machine, and steal) during each phase: {foreign}."
    )
    if any(share >= 10 for _, share in CPU.phases):
        extra += " Where that share is high, the figures of that phase are pessimistic."
    report = render(rows, info, big, small, extra)
    args.output.write_text(report, "utf-8")
    print(report)
    log(f"written to {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
