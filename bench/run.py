"""`make bench`: the service as shipped against a bare app on the same stack; prints one table.

What it does, in order (bench/README.md says more):

1. Databases on 127.0.0.1:5432 (trust auth, user postgres): `points_bench` with 1,000,000
   practitioners and 200,000 decisions, `points_bench_small` with 10,000 and 2,000, each created,
   migrated and seeded with `points-service demo seed` only when it does not hold that many people
   yet (a rerun reuses them). `points_bench` also gets an institution with exactly 2,000 registered
   staff for the roster (`points-service import institutions|registrations`), and the floor's
   write table `bench_floor_write` (emptied each run). Fresh API keys.
2. Two servers, each on its own loopback port: the service as shipped, `points-service serve`
   (its gunicorn_conf, metrics, JSON logs at INFO, authentication; development keys allowed and the
   rate limiter off for the bench data and load), on 8100; and the floor, `bench/floor.py`, a bare
   Flask + SQLAlchemy Core app under gunicorn, on 8101.
3. Load from separate processes (wrk, installed from Debian's packages when missing; else
   bench/pyload.py), on loopback, floor and service runs alternating: single eligibility GETs,
   batch of 1000, the 2000-staff roster (one page of 2000 against the floor's one request), decisions
   from 8 clients with a ledger recount afterwards, and what one GET and one decision cost the
   machine; the 1 January rollover and the next day's transitions sweep on 10k vs 1M people; and
   then, on a service of one worker so that it takes every request, that worker's resident size
   after 100,000 requests.
4. One markdown table with the date, the machine and the dataset; the servers are stopped at the end.
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
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent
PG_SERVER = "postgresql://postgres@127.0.0.1:5432/"
SQLALCHEMY_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/"
HOST = "127.0.0.1"
SERVICE_PORT, FLOOR_PORT = 8100, 8101  # --port and --floor-port change them
BIG, SMALL = "points_bench", "points_bench_small"  # --database / --small-database change them
ROSTER_CODE, ROSTER_SIZE, ROSTER_REGION = "HBENCH-ROSTER-2000", 2000, "130102"
ROSTER_PAGE = 2000  # the API's largest roster page: a settlement system syncs its staff in one call
SHANGHAI = ZoneInfo("Asia/Shanghai")
SOLO_SECONDS = 5.0  # each one-client run that measures what a request costs
ROUNDS = 3  # of floor, eligibility, eligibility, floor, bare in the single-GET measure
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
    from points_service.persistence.schema import upgrade_database

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


def ensure_floor_table(name: str) -> None:
    """The floor's write table, bench_floor_write: created here, never by the migrations."""
    sys.path.insert(0, str(BENCH))
    try:
        import floor
    finally:
        sys.path.remove(str(BENCH))
    floor.create_table(sa_url(name))


# -- the servers ----------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path
    layout: str
    metrics_dir: Path | None = None

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
        log(f"{self.name} stopped")


def require_free_port(port: int) -> None:
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError as exc:
            raise SystemExit(
                f"port {port} is not free ({exc.strerror}); choose others with --port / --floor-port"
            ) from None


def _wait_ready(server: Server, probe: str, expected_workers: int | None) -> Server:
    """Ready when `probe` answers below 500 and the workers are all forked: `expected_workers` of
    them, or, for a server whose layout is not known here, the same ones for two seconds."""
    deadline = time.monotonic() + 120
    seen: tuple[list[int], float] = ([], time.monotonic())
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(
                f"{server.name} exited ({server.process.returncode}):\n{server.log_path.read_text()[-3000:]}"
            )
        workers = server.workers()
        if workers != seen[0]:
            seen = (workers, time.monotonic())
        try:
            conn = http.client.HTTPConnection(HOST, server.port, timeout=2)
            conn.request("GET", probe)
            answered = conn.getresponse().status < 500
            conn.close()
        except OSError:
            answered = False
        settled = (
            len(workers) == expected_workers
            if expected_workers
            else workers and time.monotonic() - seen[1] >= 2
        )
        if answered and settled:
            log(
                f"{server.name} ready on {HOST}:{server.port}: master {server.process.pid}, workers {workers}"
            )
            return server
        time.sleep(0.3)
    server.stop()
    raise SystemExit(f"{server.name} did not become ready:\n{server.log_path.read_text()[-3000:]}")


def shipped_layout(env: dict[str, str]) -> tuple[int, int, int]:
    """Workers, threads and max_requests as points_service/gunicorn_conf.py sets them under `env`."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import points_service.gunicorn_conf as c; print(c.workers, c.threads, c.max_requests)",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    workers, threads, max_requests = (int(x) for x in done.stdout.split())
    return workers, threads, max_requests


def start_service(
    database: str, workdir: Path, port: int, server_cmd: str | None, *, one_worker: bool = False
) -> Server:
    """The service as shipped: `points-service serve`, which checks the settings, migrates and execs
    gunicorn with points_service/gunicorn_conf.py (its workers, threads, recycling, JSON logs and
    metrics). Only what the bench needs differs: the bench data's development keys are allowed, and
    the rate limiter is off (one key at thousands of requests a second is refused by design).
    POINTS_WEB_WORKERS / POINTS_WEB_THREADS in the environment pass through, and `server_cmd`
    replaces the command ({port} and {bin} are filled in), to compare other server choices.

    `one_worker`: the memory measure's server, one worker that takes every request, with recycling
    off (GUNICORN_CMD_ARGS wins over the config file) so that its size is its own after 100,000."""
    require_free_port(port)
    metrics_dir = Path(tempfile.mkdtemp(prefix="metrics-", dir=workdir))
    log_path = workdir / f"service-{'one' if one_worker else 'main'}.log"
    env = {
        **os.environ,
        "POINTS_DATABASE_URL": sa_url(database),
        "POINTS_ALLOW_DEV_KEYS": "1",
        "POINTS_RATE_LIMIT": "",
        "PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    # the default level, INFO, as shipped: the access line is part of what a request costs
    for name in ("POINTS_LOG_LEVEL", "POINTS_DATABASE_READ_URL", "POINTS_METRICS_PORT"):
        env.pop(name, None)
    if one_worker:
        env["POINTS_WEB_WORKERS"] = "1"
        env["GUNICORN_CMD_ARGS"] = (env.get("GUNICORN_CMD_ARGS", "") + " --max-requests 0").strip()
    if server_cmd:
        argv = shlex.split(server_cmd.format(port=port, bin=BIN))
        expected = None
        layout = f"`{server_cmd}`"
    else:
        argv = [str(BIN / "points-service"), "serve"]
        workers, threads, max_requests = shipped_layout(env)
        expected = workers
        recycling = "recycling off" if one_worker else f"recycled after {max_requests:,} requests (+ jitter)"
        plural = "s" if workers != 1 else ""
        layout = (
            f"`points-service serve`: {workers} worker{plural} × {threads} threads (gthread), {recycling}"
        )
    with log_path.open("wb") as out:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server("service", port, process, log_path, layout, metrics_dir)
    return _wait_ready(server, "/health/ready", expected)


FLOOR_LAYOUTS = {
    # the layout points_service/gunicorn_conf.py defaults to: a worker a core (at most 8) × 4 threads
    "gthread": ("gthread", min(len(os.sched_getaffinity(0)), 8), 4),
    # the default: one sync worker a core, the usual advice for a short, CPU-bound request (one
    # request at a time per process, a new connection for each, so none waits behind another on a
    # busy worker); on a quiet machine it is the faster floor, with the shorter tail (bench/README.md)
    "sync": ("sync", len(os.sched_getaffinity(0)), 1),
}


def start_floor(database: str, workdir: Path, port: int, layout: str) -> Server:
    """bench/floor.py under gunicorn, bound to loopback; no access log, recycling off (gunicorn's
    defaults), the worker heartbeat on tmpfs like the service's."""
    require_free_port(port)
    worker_class, workers, threads = FLOOR_LAYOUTS[layout]
    log_path = workdir / "floor.log"
    argv = [
        str(BIN / "gunicorn"),
        "--bind",
        f"{HOST}:{port}",
        "--worker-class",
        worker_class,
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--pythonpath",
        str(BENCH),
        "floor:create_app()",
    ]
    if os.path.isdir("/dev/shm"):
        argv[1:1] = ["--worker-tmp-dir", "/dev/shm"]
    env = {**os.environ, "BENCH_FLOOR_DATABASE_URL": sa_url(database)}
    env.pop("GUNICORN_CMD_ARGS", None)
    with log_path.open("wb") as out:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    described = (
        f"{workers} sync workers"
        if worker_class == "sync"
        else f"{workers} workers × {threads} threads (gthread)"
    )
    server = Server("floor", port, process, log_path, f"`bench/floor.py`: {described}")
    return _wait_ready(server, "/floor/eligibility/-", workers)


class Client:
    """One keep-alive HTTP connection; times a request from send to the last byte read."""

    def __init__(self, port: int, key: str = ""):
        self.port = port
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes, float]:
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            # from before the connect: a server that closes after each answer pays for a new one
            started = time.perf_counter()
            if self.conn is None:
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
                self.conn.connect()
            try:
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                payload = response.read()
                if response.will_close:  # the floor's sync workers close after each answer
                    self.conn.close()
                    self.conn = None
                return response.status, payload, time.perf_counter() - started
            except (OSError, http.client.HTTPException):
                if self.conn is not None:
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

    Ours: this script and the children it waited for (wrk, pyload, points-service), both servers
    (gunicorn masters, their workers and the workers they reaped), and PostgreSQL's background
    processes and its backends for the bench's own two databases (by exact name: other databases on
    the same server, such as another engineer's bench, are other processes' load). The rest of the
    busy time in /proc/stat (other processes, and steal) is foreign load, which the report states,
    since 2 cores shared with anything else make every figure pessimistic.
    """

    def __init__(self) -> None:
        self.servers: list[Server] = []
        self.phases: list[tuple[str, float, float]] = []
        self._mark: tuple[float, int, int] | None = None

    def ours(self) -> int:
        """This benchmark's CPU so far, in jiffies (see the class docstring for whose)."""
        total = _proc_jiffies(os.getpid(), children=True)
        for server in self.servers:
            total += _proc_jiffies(server.process.pid, children=True)
            total += sum(_proc_jiffies(pid) for pid in server.workers())
        databases = {BIG, SMALL}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if cmdline.startswith("postgres:"):
                # a backend reads "postgres: <user> <database> <client> <state>"
                words = cmdline.split()
                backend = "(" in cmdline or "[local]" in cmdline
                if not backend or (len(words) > 2 and words[2] in databases):
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
        self.phases.append((phase, share, elapsed))
        log(f"  {phase} took {elapsed:.0f} s; other processes used {share:.0f}% of the CPU meanwhile")
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

    def run(self, mode: str, port: int, duration: float, env: dict[str, str]) -> dict[str, Any]:
        """wrk when it is there (it costs the shared cores far less CPU per request than a Python
        client), else bench/pyload.py. wrk drops the answers still in flight when it stops;
        pyload waits for them. `mode` is "get" (BENCH_PATHS) or "violations" (BENCH_PEOPLE,
        BENCH_PATH: a decision's body to /v1/violations or the floor's /floor/write)."""
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
                f"http://{HOST}:{port}",
            ]
            env = {**env, "BENCH_THREADS": str(threads)}
        else:
            argv = [sys.executable, str(BENCH / "pyload.py"), mode, "--key", env.get("BENCH_KEY", "")]
            argv += ["--connections", str(self.connections), "--duration", str(duration), "--port", str(port)]
            if mode == "get":
                argv += ["--paths", env["BENCH_PATHS"]]
            else:
                argv += ["--people", env["BENCH_PEOPLE"], "--prefix", env["BENCH_PREFIX"]]
                argv += ["--decided", env["BENCH_DECIDED"], "--path", env["BENCH_PATH"]]
        done = subprocess.run(
            argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=duration + 120
        )
        if done.returncode != 0:
            raise SystemExit(f"{argv[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return self._parse(done.stdout)


def cpu_per_request(
    load: Load, mode: str, port: int, duration: float, env: dict[str, str]
) -> tuple[dict[str, Any], int]:
    """A run and the jiffies of CPU this benchmark's processes (servers, PostgreSQL, wrk) spent in
    it. On one connection nothing waits on anything else, so divided by the requests answered this
    is what one request costs the machine: a lower bound on its cost under load, where the
    processes also contend for the cores, their caches and the GIL."""
    before = CPU.ours()
    result = load.run(mode, port, duration, env)
    return result, CPU.ours() - before


def solo_cost(
    load: Load, mode: str, runs: dict[str, tuple[int, Callable[[int], dict[str, str]]]], seconds: float
) -> dict[str, dict[str, Any]]:
    """What one request costs each of `runs` ({name: (port, env for the i-th run)}), on one
    connection: two runs each in the order a, b, b, a, so that a drift of the machine's speed
    weighs on both. Per name: requests, CPU seconds per request, the runs' p50 and their results."""
    one = replace(load, connections=1)
    a, b = runs
    spent: dict[str, dict[str, Any]] = {name: {"requests": 0, "jiffies": 0, "results": []} for name in runs}
    for i, name in enumerate((a, b, b, a)):
        port, env = runs[name]
        result, jiffies = cpu_per_request(one, mode, port, seconds, env(i))
        spent[name]["requests"] += result["requests"]
        spent[name]["jiffies"] += jiffies
        spent[name]["results"].append(result)
    for totals in spent.values():
        totals["cost"] = totals["jiffies"] / HZ / max(1, totals["requests"])
        totals["p50_us"] = statistics.mean(r["p50_us"] for r in totals["results"])
        totals["seconds"] = sum(r["seconds"] for r in totals["results"])
    return spent


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


@dataclass
class Bench:
    """What every measure needs: the load, the two servers' ports, the keys and a scratch folder."""

    load: Load
    port: int
    floor_port: int
    admin: str
    hr: str
    workdir: Path
    served: int = 0


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


def bench_single_get(b: Bench, people: list[tuple[int, str]], duration: float) -> list[Row]:
    files = {
        "eligibility": (
            b.workdir / "eligibility_paths.txt",
            "/v1/practitioners/{}/eligibility",
            b.port,
            b.admin,
        ),
        "floor": (b.workdir / "floor_paths.txt", "/floor/eligibility/{}", b.floor_port, ""),
        "bare": (b.workdir / "bare_paths.txt", None, b.port, ""),
    }
    for path, pattern, port, key in files.values():
        path.write_text(
            "".join(pattern.format(code) + "\n" for _, code in people) if pattern else "/health/live\n"
        )
        first = path.read_text().split("\n", 1)[0]
        client = Client(port, key)
        status, body, _ = client.request("GET", first)
        client.close()
        if status != 200:
            raise SystemExit(f"GET {first} on port {port} answered {status}: {body[:500]!r}")

    def run(which: str, seconds: float, load: Load | None = None) -> dict[str, Any]:
        path, _, port, key = files[which]
        return (load or b.load).run("get", port, seconds, {"BENCH_PATHS": str(path), "BENCH_KEY": key})

    log("single GET: warming up (5 s each: floor, service)")
    run("floor", 5)
    run("eligibility", 5)
    # rounds of floor, eligibility, eligibility, floor: this machine's speed drifts by a third
    # within a minute, and short alternating runs make the drift weigh on both alike. Each round
    # ends with the service's health check (no key, no database): what its own stack costs
    each = duration / (2 * ROUNDS)
    log(
        f"single GET: {ROUNDS} × (floor, eligibility, eligibility, floor, bare), {each:.1f} s each, "
        f"{b.load.connections} connections"
    )
    runs: dict[str, list[dict[str, Any]]] = {which: [] for which in files}
    for which in ("floor", "eligibility", "eligibility", "floor", "bare") * ROUNDS:
        runs[which].append(run(which, each))
    f, e, h = _merge(runs["floor"]), _merge(runs["eligibility"]), _merge(runs["bare"])
    log(
        f"  floor {f['rps']:.0f} req/s p50 {f['p50_us'] / 1000:.2f} ms p99 {f['p99_us'] / 1000:.2f} ms; "
        f"eligibility {e['rps']:.0f} req/s p50 {e['p50_us'] / 1000:.2f} ms p99 {e['p99_us'] / 1000:.2f} ms; "
        f"bare {h['rps']:.0f} req/s p50 {h['p50_us'] / 1000:.2f} ms p99 {h['p99_us'] / 1000:.2f} ms; "
        f"errors {f['errors']}/{e['errors']}/{h['errors']}; runs (req/s, p50, p99): floor {f['runs']}, "
        f"eligibility {e['runs']}, bare {h['runs']}"
    )
    # what one request costs the machine, on one connection: with 8 connections always busy on
    # these cores, a request's mean wait can be no less than 8 × that cost ÷ cores (Little's law)
    cost = solo_cost(
        b.load,
        "get",
        {
            "floor": (b.floor_port, lambda _: {"BENCH_PATHS": str(files["floor"][0]), "BENCH_KEY": ""}),
            "eligibility": (
                b.port,
                lambda _: {"BENCH_PATHS": str(files["eligibility"][0]), "BENCH_KEY": b.admin},
            ),
        },
        each / 2,
    )
    fo, eo = cost["floor"], cost["eligibility"]
    log(
        f"  one connection: floor {fo['requests'] / fo['seconds']:.0f} req/s, {fo['cost'] * 1000:.2f} ms CPU "
        f"a request; eligibility {eo['requests'] / eo['seconds']:.0f} req/s, {eo['cost'] * 1000:.2f} ms CPU "
        f"a request ({CORES} cores)"
    )
    b.served += sum(r["requests"] for r in (f, e, h, fo, eo))
    ratio = e["rps"] / f["rps"]
    n = b.load.connections
    return [
        Row(
            f"Single eligibility GET, {n} connections, {duration:.0f} s each in {2 * ROUNDS} runs "
            f"({ROUNDS} × floor, service, service, floor, bare): throughput",
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
            f"The service's own stack: `GET /health/live` (no key, no database; its hooks, JSON access "
            f"log and metrics), same {n} connections, {ROUNDS} runs of {each:.0f} s: p99 (median of the "
            f"runs'; worst run {h['p99_worst_us'] / 1000:.1f} ms) at {h['rps']:.0f} req/s, p50 "
            f"{h['p50_us'] / 1000:.2f} ms",
            f"{h['p99_us'] / 1000:.2f} ms",
        ),
        Row(
            f"Cost of one GET: one connection, 2 runs of {each / 2:.1f} s each; CPU of both servers, "
            f"PostgreSQL and {b.load.name} per request (p50 {eo['p50_us'] / 1000:.2f} ms, floor "
            f"{fo['p50_us'] / 1000:.2f} ms). With {n} connections always busy on {CORES} cores, the "
            f"mean latency can be no lower than {n} × cost ÷ {CORES}: {n * eo['cost'] / CORES * 1000:.1f} ms "
            f"(floor {n * fo['cost'] / CORES * 1000:.1f} ms)",
            f"{eo['cost'] * 1000:.2f} ms",
            f"{fo['cost'] * 1000:.2f} ms",
            f"{eo['cost'] / fo['cost']:.2f}×",
        ),
    ]


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


def _p(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def bench_batch(b: Bench, codes: list[str], iterations: int) -> list[Row]:
    service, floor = Client(b.port, b.admin), Client(b.floor_port)
    rng = random.Random(6)
    batches = [rng.sample(codes, 1000) for _ in range(iterations + 3)]

    def real(i: int) -> float:
        status, body, seconds = service.request(
            "POST", "/v1/eligibility/batch", {"practitioner_codes": batches[i]}
        )
        results = json.loads(body).get("results", []) if status == 200 else []
        if status != 200 or len(results) != 1000 or any(r["status"] == "unknown" for r in results):
            raise SystemExit(f"batch answered {status} with {len(results)} results: {body[:300]!r}")
        return seconds

    def bare(i: int) -> float:
        status, body, seconds = floor.request("POST", "/floor/batch", {"practitioner_codes": batches[i]})
        results = json.loads(body).get("results", []) if status == 200 else []
        if status != 200 or len(results) != 1000:
            raise SystemExit(f"floor batch answered {status} with {len(results)} rows: {body[:300]!r}")
        return seconds

    log(
        f"batch of 1000 codes: {iterations} sequential requests each (alternating with the floor, 3 warm-ups)"
    )
    r, f = alternate(iterations, 3, real, bare)
    service.close()
    floor.close()
    b.served += 2 * (iterations + 3)
    mr, mf = statistics.median(r), statistics.median(f)
    log(f"  batch median {ms(mr)} (p90 {ms(_p(r, 90))}), floor median {ms(mf)} (p90 {ms(_p(f, 90))})")
    return [
        Row(
            f"Batch eligibility, 1000 codes, `POST /v1/eligibility/batch`: median of {iterations} "
            f"(p90 {ms(_p(r, 90))}); floor: one query (`= ANY(array)`) returning the 1000 rows",
            ms(mr),
            f"{ms(mf)} (p90 {ms(_p(f, 90))})",
            f"{mr / mf:.2f}×",
            "≤ 2.5× floor",
            mr <= 2.5 * mf,
            short="batch of 1000",
        )
    ]


_CURSOR = re.compile(rb'"next_cursor":\s*(null|"([^"]*)")\s*}\s*$')


def bench_roster(b: Bench, code: str, iterations: int) -> list[Row]:
    service, floor = Client(b.port, b.hr), Client(b.floor_port)
    pages_seen: list[int] = []

    def real(_: int) -> float:
        cursor, total, pages, bodies = None, 0.0, 0, []
        while True:
            path = f"/v1/institutions/{code}/eligibility?limit={ROSTER_PAGE}" + (
                f"&cursor={cursor}" if cursor else ""
            )
            status, body, seconds = service.request("GET", path)
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
        b.served += pages
        items = sum(len(json.loads(body)["items"]) for body in bodies)
        if items != ROSTER_SIZE:
            raise SystemExit(f"the roster of {code} gave {items} people, not {ROSTER_SIZE}")
        pages_seen.append(pages)
        return total

    def bare(_: int) -> float:
        status, body, seconds = floor.request("GET", f"/floor/roster/{code}")
        b.served += 1
        rows = len(json.loads(body)["results"]) if status == 200 else 0
        if rows != ROSTER_SIZE:
            raise SystemExit(f"the floor roster answered {status} with {rows} rows: {body[:300]!r}")
        return seconds

    log(
        f"roster of {ROSTER_SIZE}: {iterations} fetches of every page vs the floor's one request (3 warm-ups)"
    )
    r, f = alternate(iterations, 3, real, bare)
    service.close()
    floor.close()
    mr, mf = statistics.median(r), statistics.median(f)
    pages = max(pages_seen)
    log(f"  roster ({pages} pages) median {ms(mr)}, floor (1 request) median {ms(mf)}")
    return [
        Row(
            f"Roster of {ROSTER_SIZE} staff, "
            f"`GET /v1/institutions/{{code}}/eligibility?limit={ROSTER_PAGE}`: "
            f"{pages} request(s) for all of them; median of {iterations}. "
            f"Floor: one request, one query, all {ROSTER_SIZE} rows",
            ms(mr),
            f"{ms(mf)} (1 request)",
            f"{mr / mf:.2f}×",
            "≤ 2.5× floor",
            mr <= 2.5 * mf,
            short="roster of 2000",
        )
    ]


def bench_writes(b: Bench, name: str, duration: float) -> list[Row]:
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
        floor_before = scalar(conn, "SELECT count(*) FROM bench_floor_write")
        # start from a clean checkpoint, so that a timed one (every checkpoint_timeout, 5 min by
        # default) does not fall inside the runs: its flush stalled commits for up to a second,
        # which measured the disk at that moment rather than the service
        conn.execute("CHECKPOINT")
    occurred = (day - dt.timedelta(days=7)).isoformat()
    # every service run writes to its own people, so that each writes to people in the same state
    # (no earlier bench decision): two 8-client runs, then two one-client runs; the floor's rows
    # need no real person
    slices = {run: people[i::4] for i, run in enumerate(("A", "B", "S1", "S2"))}
    files = {}
    for run, chosen in slices.items():
        files[run] = b.workdir / f"write_people_{run}.txt"
        files[run].write_text("".join(f"{code} {inst} {occurred}\n" for code, inst, _ in chosen))
    common = {"BENCH_DECIDED": day.isoformat()}

    def service_env(run: str, run_prefix: str) -> dict[str, str]:
        return {
            **common,
            "BENCH_PEOPLE": str(files[run]),
            "BENCH_KEY": b.admin,
            "BENCH_PREFIX": run_prefix,
            "BENCH_PATH": "/v1/violations",
        }

    def floor_env(run_prefix: str) -> dict[str, str]:
        return {
            **common,
            "BENCH_PEOPLE": str(files["A"]),
            "BENCH_KEY": "",
            "BENCH_PREFIX": run_prefix,
            "BENCH_PATH": "/floor/write",
        }

    n = b.load.connections
    half = duration / 2
    log(
        f"decisions: {n} clients, floor, service, service, floor, {half:.1f} s each; case_refs {prefix}-*, "
        f"{len(people)} distinct registered people, decided {day}, occurred {occurred}"
    )
    service_runs: list[dict[str, Any]] = []
    floor_runs: list[dict[str, Any]] = []
    for i, which in enumerate(("floor", "A", "B", "floor")):
        if which == "floor":
            floor_runs.append(b.load.run("violations", b.floor_port, half, floor_env(f"{prefix}-F{i}")))
        else:
            service_runs.append(
                b.load.run("violations", b.port, half, service_env(which, f"{prefix}-{which}"))
            )
    time.sleep(1)
    created = sum(w["status_201"] for w in service_runs)
    seconds = sum(w["seconds"] for w in service_runs)
    rate = created / seconds
    floor_created = sum(w["status_201"] for w in floor_runs)
    floor_rate = floor_created / sum(w["seconds"] for w in floor_runs)
    w, fw = _merge(service_runs), _merge(floor_runs)
    with connect(name) as conn:
        rows = scalar(conn, "SELECT count(*) FROM violation WHERE case_ref LIKE %s", (prefix + "-%",))
        after = scalar(conn, "SELECT count(*) FROM violation")
        floor_rows = scalar(conn, "SELECT count(*) FROM bench_floor_write") - floor_before
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
    in_flight = n * len(service_runs) if b.load.wrk else 0
    lost_or_double = not created <= rows <= created + in_flight or entries != rows or after - before != rows
    refused = sum(x["status_4xx"] + x["status_5xx"] for x in service_runs)
    log(
        f"  service {created} x 201 in {seconds:.1f} s = {rate:.0f}/s (p50 {w['p50_us'] / 1000:.1f} ms, "
        f"p99 {w['p99_us'] / 1000:.1f} ms); other answers: 200 "
        f"{sum(x['status_200'] for x in service_runs)}, 4xx {sum(x['status_4xx'] for x in service_runs)}, "
        f"5xx {sum(x['status_5xx'] for x in service_runs)}; new rows {rows}, ledger entries {entries}, "
        f"people {touched}, person-years differing from the ledger {mismatched}; floor {floor_created} x 201 "
        f"= {floor_rate:.0f}/s (p50 {fw['p50_us'] / 1000:.1f} ms, p99 {fw['p99_us'] / 1000:.1f} ms), "
        f"{floor_rows} rows"
    )
    # what one decision costs the machine, on one client and to people the runs above did not touch
    cost = solo_cost(
        b.load,
        "violations",
        {
            "floor": (b.floor_port, lambda i: floor_env(f"{prefix}-FS{i}")),
            # runs 1 and 2 of the a, b, b, a order are the service's
            "service": (b.port, lambda i: service_env(f"S{i}", f"{prefix}S{i}")),
        },
        SOLO_SECONDS,
    )
    so, fo = cost["service"], cost["floor"]
    solo_refused = sum(r["status_4xx"] + r["status_5xx"] for r in so["results"])
    log(
        f"  one client: service {so['requests']} writes in {so['seconds']:.1f} s, {so['cost'] * 1000:.2f} ms "
        f"CPU a write (p50 {so['p50_us'] / 1000:.1f} ms, {solo_refused} refused); floor {fo['requests']} in "
        f"{fo['seconds']:.1f} s, {fo['cost'] * 1000:.2f} ms CPU a write (p50 {fo['p50_us'] / 1000:.1f} ms)"
    )
    b.served += w["requests"] + fw["requests"] + so["requests"] + fo["requests"]
    return [
        Row(
            f"Cost of one decision: one client, 2 runs of {SOLO_SECONDS:.0f} s each (floor, service, "
            f"service, floor), to people the 8 clients did not write to; CPU of both servers, PostgreSQL "
            f"and {b.load.name} per write (p50 {so['p50_us'] / 1000:.1f} ms, floor "
            f"{fo['p50_us'] / 1000:.1f} ms; "
            f"{solo_refused} refused). {CORES} cores ÷ cost = the most a second this machine could take "
            f"with no contention: {CORES / so['cost']:.0f}/s (floor {CORES / fo['cost']:.0f}/s)",
            f"{so['cost'] * 1000:.2f} ms",
            f"{fo['cost'] * 1000:.2f} ms",
            f"{so['cost'] / fo['cost']:.2f}×",
            "— (reported)",
        ),
        Row(
            f"Decisions from {n} concurrent clients ({b.load.name}, {n} keep-alive connections), "
            f"floor, service, service, floor, {half:.1f} s each, each decision to a different person "
            f"(p50 {w['p50_us'] / 1000:.1f} ms, p99 {w['p99_us'] / 1000:.1f} ms; floor p50 "
            f"{fw['p50_us'] / 1000:.1f} ms, p99 {fw['p99_us'] / 1000:.1f} ms; {refused} refused)",
            f"{rate:.0f} decisions/s",
            f"{floor_rate:.0f} writes/s",
            f"{rate / floor_rate:.2f}×",
            "— (reported)",
        ),
        Row(
            f"…then: 201 answers vs new violation rows vs decision ledger entries; person-years of the "
            f"{touched} people whose snapshot ≠ ledger recount"
            + (f" (up to {in_flight} requests were in flight when wrk stopped)" if in_flight else ""),
            f"{created} / {rows} / {entries}; {mismatched} differ",
            target="rows = entries = 201s (+ in flight); 0 differ (0 lost, 0 double)",
            ok=not lost_or_double and mismatched == 0,
            short="writes: zero lost, zero double",
        ),
    ]


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

    assert server.metrics_dir is not None
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
    b: Bench, server: Server, people: list[tuple[int, str]], requests: int, max_seconds: float
) -> list[Row]:
    rng = random.Random(7)
    year = today().year
    lines = []
    for _, code in people[:100_000]:
        roll = rng.random()
        if roll < 0.60:
            lines.append(f"/v1/practitioners/{code}/eligibility")
        elif roll < 0.75:
            at = dt.date(year, 1, 1) + dt.timedelta(days=rng.randrange(300))
            lines.append(f"/v1/practitioners/{code}/eligibility?at={at}")
        elif roll < 0.82:
            lines.append(f"/v1/practitioners/{code}/eligibility?institution_code={ROSTER_CODE}")
        elif roll < 0.95:
            lines.append(f"/v1/practitioners/{code}/standing")
        else:
            lines.append(f"/v1/practitioners/X{code}/eligibility")  # unknown: 404
    path = b.workdir / "mixed_paths.txt"
    path.write_text("\n".join(lines) + "\n")
    env = {"BENCH_PATHS": str(path), "BENCH_KEY": b.admin}
    (pid,) = server.workers()
    log(
        f"memory: one worker; mixed GETs (60% eligibility, 15% ?at=, 7% ?institution_code=, "
        f"13% standing, 5% unknown code), 5 s of warm-up, then until it has served {requests:,}"
    )
    sent = b.load.run("get", server.port, 5, env)["requests"]
    baseline = rss_mb(pid)
    deadline = time.monotonic() + max_seconds
    rate = 400.0
    while True:
        served = served_by_worker(server, [pid])[pid]
        behind = requests - served
        if behind <= 0 or time.monotonic() >= deadline:
            break
        chunk = min(60.0, max(5.0, behind / rate * 1.05), deadline - time.monotonic() + 1)
        result = b.load.run("get", server.port, chunk, env)
        sent += result["requests"]
        rate = max(100.0, result["rps"])
        log(
            f"  {result['requests']} requests at {result['rps']:.0f}/s; "
            f"served so far {served_by_worker(server, [pid])[pid]:,}"
        )
    served = served_by_worker(server, [pid])[pid]
    restarted = server.workers() != [pid]
    size = rss_mb(pid)
    b.served += sent
    log(
        f"  RSS {size:.1f} MB after {served:,} requests (after the warm-up: {baseline:.1f} MB); "
        f"restarted: {restarted}"
    )
    reached = served >= requests and not restarted
    row = Row(
        f"Web worker resident size (VmRSS) after ≥ {requests:,} requests: a service of one worker "
        f"({server.layout}) taking every request; {served:,} served (after the warm-up: {baseline:.0f} MB)",
        f"{size:.0f} MB",
        target="≤ 150 MB",
        ok=size <= 150 if reached else None,
        short="worker memory",
    )
    if not reached:
        row.measure += f" — INCOMPLETE: it did not reach {requests:,} requests within the time bound" + (
            " (the worker restarted)" if restarted else ""
        )
    return [row]


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
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
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
    rows: list[Row],
    info: dict[str, str],
    big: dict[str, Any],
    small: dict[str, Any],
    servers: dict[str, str],
    extra: str,
) -> str:
    head = [
        "# points_service benchmark: the service as shipped against a bare app",
        "",
        f"- **Date:** {dt.datetime.now(SHANGHAI):%Y-%m-%d %H:%M} Asia/Shanghai",
        f"- **Machine:** {info['cores']} cores ({info['cpu']}), {info['ram']} RAM, Linux {info['kernel']}, "
        f"PostgreSQL {info['postgresql']}, Python {info['python']}; load average at the start "
        f"{info['loadavg']} (other work shares these cores: see the last paragraph)",
        f"- **Dataset** (`{BIG}`): {big['practitioner']:,} practitioners, "
        f"{big['institution']:,} institutions, "
        f"{big['registration']:,} registrations, {big['violation'] - big['bench_writes']:,} decisions seeded"
        f" (+{big['bench_writes']:,} written by earlier bench runs), "
        f"{big['ledger_entry']:,} ledger entries at the "
        f"start; `{SMALL}`: {small['practitioner']:,} practitioners, {small['violation']:,} decisions",
        f"- **Service** on {HOST}:{servers['service_port']}, as shipped: {servers['service']}; "
        f"authentication on (Bearer key), Prometheus metrics on, JSON logs at INFO (an access line per "
        f"request, to a file); `POINTS_ALLOW_DEV_KEYS=1` (the bench data's keys) and "
        f'`POINTS_RATE_LIMIT=""` (the limiter off: one key at thousands of requests a second would be '
        f"refused by design, 200 a second by default); PostgreSQL on the same machine",
        f"- **Floor** on {HOST}:{servers['floor_port']}: {servers['floor']} under gunicorn, a separate bare "
        f"app on the same stack (Flask, SQLAlchemy Core, psycopg, gunicorn): no key, no hooks, no "
        f"marshmallow, plain SQL, `json.dumps`",
        f"- **Load:** {info['load']} in its own process on loopback; batch and roster from one sequential "
        f"keep-alive client in bench/run.py",
        "",
        "| Measure | Service | Floor | Ratio | Target | Result |",
        "|---|---|---|---|---|---|",
    ]
    body = [f"| {r.measure} | {r.value} | {r.floor} | {r.ratio} | {r.target} | {r.verdict} |" for r in rows]
    failed = [r.short or r.measure[:40] for r in rows if r.ok is False]
    tail = [
        "",
        "Floor: `bench/floor.py`, one unique-index lookup by code returned as a small JSON object "
        "(`GET /floor/eligibility/<code>`), one query for the same 1000 codes (`POST /floor/batch`), one "
        f"query for the {ROSTER_SIZE} roster rows in one response (`GET /floor/roster/<code>`; the service "
        f"answers them in one page of up to {ROSTER_PAGE}), "
        "and one INSERT of a decision-shaped row in one transaction (`POST /floor/write`, into "
        "`bench_floor_write`). The rollover rows' floor column is the same sweep on 10,000 people.",
        extra,
        "",
        f"**{len([r for r in rows if r.ok])} of {len([r for r in rows if r.ok is not None])} targets met**"
        + (f"; missed: {'; '.join(failed)}." if failed else "."),
    ]
    return "\n".join(head + body + tail) + "\n"


PHASES = ("single", "batch", "roster", "writes", "sweeps", "memory")


def main() -> None:
    global BIG, SMALL
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=BIG, help="the big database (default %(default)s)")
    parser.add_argument("--small-database", default=SMALL, help="default %(default)s")
    parser.add_argument("--practitioners", type=int, default=1_000_000)
    parser.add_argument("--violations", type=int, default=200_000)
    parser.add_argument("--small-practitioners", type=int, default=10_000)
    parser.add_argument("--small-violations", type=int, default=2_000)
    parser.add_argument("--port", type=int, default=SERVICE_PORT, help="the service's port (%(default)s)")
    parser.add_argument("--floor-port", type=int, default=FLOOR_PORT, help="the floor's port (%(default)s)")
    parser.add_argument(
        "--floor-layout",
        choices=sorted(FLOOR_LAYOUTS),
        default="sync",
        help="the floor's gunicorn workers: sync = one sync worker a core (default); gthread = the "
        "service's default layout, a worker a core × 4 threads",
    )
    parser.add_argument(
        "--server-cmd",
        help="start the service with this command instead of `points-service serve`; {port} and {bin} "
        "(this virtualenv's bin folder) are filled in, e.g. \"{bin}/gunicorn -c "
        'python:points_service.gunicorn_conf --bind 127.0.0.1:{port} points_service.wsgi:app"',
    )
    parser.add_argument(
        "--duration", type=float, default=30.0, help="seconds of single GETs for each of service and floor"
    )
    parser.add_argument(
        "--write-duration", type=float, default=15.0, help="seconds of 8-client decisions for each"
    )
    parser.add_argument("--batch-iterations", type=int, default=50)
    parser.add_argument("--roster-iterations", type=int, default=30)
    parser.add_argument("--memory-requests", type=int, default=100_000, help="requests the one worker serves")
    parser.add_argument("--memory-max-seconds", type=float, default=600.0)
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help="which measures, comma-separated (default: all of %(default)s)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        help="wait up to this many seconds for other processes to use < 10%% CPU",
    )
    parser.add_argument("--keep-server", action="store_true", help="leave both servers running (profiling)")
    parser.add_argument("--output", type=Path, default=BENCH / "results.md")
    args = parser.parse_args()
    BIG, SMALL = args.database, args.small_database
    phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    if phases - set(PHASES):
        parser.error(
            f"unknown phases: {', '.join(sorted(phases - set(PHASES)))}; choose from {', '.join(PHASES)}"
        )
    for port in (args.port, args.floor_port):
        require_free_port(port)

    os.chdir(ROOT)
    if args.wait_quiet:
        wait_quiet(args.wait_quiet)
    load = Load(ensure_wrk())
    info = machine()
    log(f"machine: {info}")
    workdir = Path(tempfile.mkdtemp(prefix="points-bench-"))
    big = ensure_database(BIG, args.practitioners, args.violations)
    small = ensure_database(SMALL, args.small_practitioners, args.small_violations)
    roster_code = ensure_roster(BIG, workdir)
    ensure_floor_table(BIG)
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
    people = sample_people(BIG, 100_000)
    codes = [code for _, code in people]
    b = Bench(load, args.port, args.floor_port, admin, hr, workdir)

    rows: list[Row] = []
    memory: list[Row] = []
    servers: dict[str, Any] = {"service_port": args.port, "floor_port": args.floor_port}
    CPU.start()
    floor = start_floor(BIG, workdir, args.floor_port, args.floor_layout)
    service = start_service(BIG, workdir, args.port, args.server_cmd)
    CPU.servers = [floor, service]
    CPU.stop("starting both servers")
    servers.update(service=service.layout, floor=floor.layout)
    measures: list[tuple[str, Callable[[], list[Row]]]] = [
        ("single", lambda: bench_single_get(b, people, args.duration)),
        ("batch", lambda: bench_batch(b, codes, args.batch_iterations)),
        ("roster", lambda: bench_roster(b, roster_code, args.roster_iterations)),
        ("writes", lambda: bench_writes(b, BIG, args.write_duration)),
    ]
    try:
        for phase, measure in measures:
            if phase in phases:
                CPU.start()
                rows += measure()
                CPU.stop(phase)
    finally:
        if args.keep_server:
            log(
                f"left running: floor {floor.process.pid} on {args.floor_port}, "
                f"service {service.process.pid} on {args.port}"
            )
        else:
            floor.stop()
            service.stop()
            # as shipped, a worker restarts after max_requests: a new one loads the app meanwhile
            with service.log_path.open(errors="replace") as lines:
                restarts = sum("Autorestarting worker" in line for line in lines)
            servers["service"] += f"; its workers were recycled {restarts} times during these measures"
    if "memory" in phases and not args.keep_server:
        # a service of one worker, so that it takes every request: with several, keep-alive
        # connections stay with whichever worker accepted them, and some took far longer than
        # others to reach the count
        CPU.start()
        one = start_service(BIG, workdir, args.port, args.server_cmd, one_worker=True)
        CPU.servers = [one]
        try:
            memory = bench_memory(b, one, people, args.memory_requests, args.memory_max_seconds)
        finally:
            one.stop()
        CPU.stop("memory")
    if "sweeps" in phases:
        CPU.start()
        rows += bench_sweeps(small["practitioner"], big["practitioner"])
        CPU.stop("sweeps")
    rows += memory
    extra = f"About {b.served:,} requests were sent in all; the run took {time.monotonic() - STARTED:.0f} s"
    if big["seeded_now"] or small["seeded_now"]:
        extra += " (seeding the databases included)"
    foreign = ", ".join(f"{phase} {elapsed:.0f} s, {share:.0f}%" for phase, share, elapsed in CPU.phases)
    extra += (
        f". Each phase's time, and the share of the machine's CPU used meanwhile by processes other than "
        f"this benchmark's (other work on the machine, and steal): {foreign}."
    )
    if any(share >= 10 for _, share, _ in CPU.phases):
        extra += " Where that share is high, the figures of that phase are pessimistic."
    report = render(rows, info, big, small, servers, extra)
    args.output.write_text(report, "utf-8")
    print(report)
    log(f"written to {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
