"""Reads on a real streaming replica, writes on the primary (PostgreSQL only).

The module starts a hot standby of the test cluster with pg_basebackup on a free port and builds
an app with POINTS_DATABASE_READ_URL pointing at it. The proof that the replica answers is not a
mock: replay is paused on the standby, the primary takes writes, and the replica-routed endpoints
(standing, eligibility, batch, roster) answer from the state before them while the primary-routed
ones already see them; once replay resumes the replica catches up.

Needs: root (PostgreSQL refuses to run as root, so its binaries run as the `postgres` OS user via
runuser) or a non-root user that can run them directly; the server binaries of the primary's major
version; and a primary that accepts physical replication connections from the test's user
(`wal_level` replica or logical, free WAL senders and slots, a `replication` line in pg_hba.conf).
Anything missing skips the module with the reason.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from factories import Api, code, make_key
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from points_service import create_app
from points_service.clock import utc_now
from points_service.persistence.engine import transaction
from points_service.persistence.models import ApiKey, Institution, Violation
from points_service.services.keys import hash_key

pytestmark = pytest.mark.postgresql

REPLICATION_TIMEOUT = 10.0
WHERE_AM_I = "SELECT pg_is_in_recovery(), inet_server_port()"
SLOT_PREFIX = "points_test_replica_"
# a hot standby refuses to start unless these are at least the primary's values
STANDBY_MINIMUMS = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)


@dataclass
class Replica:
    url: str  # the suite database, on the standby
    port: int
    primary: Engine  # autocommit, on the primary's `postgres` database
    admin: Engine  # autocommit, on the standby's `postgres` database (not the suite database)

    def wait_for_replay(self) -> None:
        """Block until the standby has replayed everything the primary has written so far."""
        with self.primary.connect() as conn:
            lsn = conn.scalar(text("SELECT pg_current_wal_lsn()::text"))
        _until(
            lambda: self._scalar("SELECT pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)", lsn=lsn),
            f"the replica to replay up to {lsn}",
        )

    @contextlib.contextmanager
    def replay_paused(self) -> Iterator[None]:
        """The standby keeps receiving WAL but applies none of it: it is a replica that lags."""
        self._scalar("SELECT pg_wal_replay_pause()")
        try:
            _until(lambda: self._scalar("SELECT pg_get_wal_replay_pause_state()") == "paused", "pause")
            yield
        finally:
            self._scalar("SELECT pg_wal_replay_resume()")

    def client_connections(self, database: str) -> int:
        return self._scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = :db AND backend_type = 'client backend'",
            db=database,
        )

    def _scalar(self, sql: str, **params: Any) -> Any:
        with self.admin.connect() as conn:
            return conn.scalar(text(sql), params)


def _until(check: Callable[[], Any], what: str, timeout: float = REPLICATION_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _show(conn, name: str) -> str:
    return conn.exec_driver_sql(f"SHOW {name}").scalar()


def _replication_refusal(url: URL) -> str | None:
    """None when the primary accepts a physical replication connection, else its error."""
    try:
        psycopg.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 5432,
            user=url.username or "postgres",
            password=url.password,
            replication="true",
            connect_timeout=5,
        ).close()
    except psycopg.OperationalError as exc:
        return str(exc).strip()
    return None


def _check_primary(conn, url: URL) -> str:
    """Skip unless the primary can feed a streaming replica; return its server bin directory."""
    if conn.scalar(text("SELECT pg_is_in_recovery()")):
        pytest.skip("the test database is itself a standby")
    if not conn.scalar(text("SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user")):
        pytest.skip(f"role {url.username!r} may not replicate (needs SUPERUSER or REPLICATION)")
    version = int(_show(conn, "server_version_num"))
    if version < 140000:
        pytest.skip(f"needs PostgreSQL 14+ for pg_get_wal_replay_pause_state (server is {version})")
    wal_level = _show(conn, "wal_level")
    if wal_level not in ("replica", "logical"):
        pytest.skip(f"the primary runs with wal_level={wal_level}; a streaming replica needs replica")
    senders = int(_show(conn, "max_wal_senders"))
    in_use = conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'"))
    if senders - in_use < 2:  # pg_basebackup -X stream uses two; the standby then keeps one
        pytest.skip(f"the primary has {senders - in_use} free WAL senders (max_wal_senders={senders})")
    slots = int(_show(conn, "max_replication_slots"))
    if conn.scalar(text("SELECT count(*) FROM pg_replication_slots")) >= slots:
        pytest.skip(f"every replication slot of the primary is taken (max_replication_slots={slots})")
    refusal = _replication_refusal(url)
    if refusal is not None:
        try:
            hba = _show(conn, "hba_file")
        except DBAPIError:
            hba = "pg_hba.conf"
        pytest.skip(
            f"the primary refuses replication connections ({refusal.split('FATAL:')[-1].strip()}); "
            f"to run this test add 'host replication {url.username or 'postgres'} 127.0.0.1/32 trust' "
            f"to {hba} and reload PostgreSQL (SELECT pg_reload_conf())"
        )
    bindir = Path(f"/usr/lib/postgresql/{version // 10000}/bin")
    if not (bindir / "pg_basebackup").exists():
        found = shutil.which("pg_basebackup")
        if found is None:
            pytest.skip(f"no PostgreSQL {version // 10000} server binaries (pg_basebackup, pg_ctl)")
        bindir = Path(found).parent
    if not (bindir / "pg_ctl").exists():
        pytest.skip(f"no pg_ctl beside {bindir / 'pg_basebackup'}")
    return str(bindir)


def _as_postgres() -> tuple[list[str], int | None, int | None]:
    """The command prefix that runs PostgreSQL binaries as a user they accept, and its uid/gid."""
    if os.geteuid() != 0:
        return [], None, None
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as the postgres user")
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no postgres OS user to run the standby as")
    return [runuser, "-u", "postgres", "--"], account.pw_uid, account.pw_gid


def _drop_stale_slots(conn) -> None:
    """Slots left by a run that was killed before its teardown (their pid is gone) pin WAL forever."""
    for (name,) in conn.execute(
        text("SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE :p AND NOT active"),
        {"p": SLOT_PREFIX + "%"},
    ):
        pid = name.removeprefix(SLOT_PREFIX).split("_")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            conn.execute(text("SELECT pg_drop_replication_slot(:n)"), {"n": name})


def _drop_slot(conn, name: str) -> None:
    # the walsender may linger a moment after the standby stops
    deadline = time.monotonic() + REPLICATION_TIMEOUT
    while conn.scalar(text("SELECT active FROM pg_replication_slots WHERE slot_name = :n"), {"n": name}):
        if time.monotonic() >= deadline:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = :n"
                ),
                {"n": name},
            )
            deadline = time.monotonic() + REPLICATION_TIMEOUT
        time.sleep(0.1)
    conn.execute(
        text("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = :n"),
        {"n": name},
    )


def _run(argv: list[str], env: dict[str, str], what: str, log: Path | None = None) -> None:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr.strip()}\n{tail}")


@pytest.fixture(scope="module")
def replica(database_url) -> Iterator[Replica]:
    """A hot standby of the whole test cluster (so the suite database too) on a free port.

    It does not wait for the suite's migrations, so a primary that cannot replicate skips at once.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("a streaming replica needs PostgreSQL")
    prefix, uid, gid = _as_postgres()
    primary = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with primary.connect() as conn:
            bindir = _check_primary(conn, url)
            minimums = {name: _show(conn, name) for name in STANDBY_MINIMUMS}
            _drop_stale_slots(conn)
    except BaseException:  # a skip too: close the pooled connection, or its finaliser warns
        primary.dispose()
        raise

    root = Path(tempfile.mkdtemp(prefix="points-replica-"))
    if uid is not None:
        os.chown(root, uid, gid)
    data, log = root / "data", root / "postgresql.log"
    port = _free_port()
    slot = f"{SLOT_PREFIX}{os.getpid()}_{port}"
    (root / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    (root / "pg_ident.conf").write_text("")
    for name in ("pg_hba.conf", "pg_ident.conf"):
        if uid is not None:
            os.chown(root / name, uid, gid)
    env = {**os.environ, "PGAPPNAME": "points-test-replica"}
    if url.password:
        env["PGPASSWORD"] = url.password
    admin: Engine | None = None
    try:
        _run(
            [
                *prefix,
                f"{bindir}/pg_basebackup",
                *(
                    "-h",
                    url.host or "127.0.0.1",
                    "-p",
                    str(url.port or 5432),
                    "-U",
                    url.username or "postgres",
                ),
                *("-D", str(data), "-R", "-X", "stream", "-C", "-S", slot),
                *("--checkpoint=fast", "--no-sync", "--no-manifest"),
            ],
            env,
            "pg_basebackup",
        )
        if not (data / "postgresql.conf").exists():  # Debian keeps it in /etc, outside the data dir
            (data / "postgresql.conf").write_text("# the test replica: settings come from pg_ctl -o\n")
            if uid is not None:
                os.chown(data / "postgresql.conf", uid, gid)
        options = {
            "port": port,
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": root,
            "hba_file": root / "pg_hba.conf",
            "ident_file": root / "pg_ident.conf",
            "hot_standby": "on",
            "ssl": "off",
            "archive_mode": "off",
            "logging_collector": "off",
            "shared_buffers": "32MB",
            # a throwaway standby: skip the fsync of the whole data directory at start-up
            "fsync": "off",
            **minimums,
        }
        opts = " ".join(f"-c {name}={value}" for name, value in options.items())
        _run(
            [
                *prefix,
                f"{bindir}/pg_ctl",
                "-D",
                str(data),
                "-l",
                str(log),
                "-o",
                opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
            env,
            "starting the replica",
            log,
        )
        replica_url = url.set(host="127.0.0.1", port=port)
        admin = create_engine(replica_url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        handle = Replica(
            url=replica_url.render_as_string(hide_password=False), port=port, primary=primary, admin=admin
        )
        _until(
            lambda: handle._scalar("SELECT status FROM pg_stat_wal_receiver") == "streaming",
            "the replica to stream from the primary",
        )
        handle.wait_for_replay()
        yield handle
    finally:
        if admin is not None:
            admin.dispose()
        if (data / "postmaster.pid").exists():  # started, even if pg_ctl gave up waiting
            subprocess.run(
                [*prefix, f"{bindir}/pg_ctl", "-D", str(data), "stop", "-m", "fast", "-w", "-t", "60"],
                env=env,
                capture_output=True,
                timeout=90,
                check=False,
            )
        with primary.connect() as conn:
            _drop_slot(conn, slot)
        primary.dispose()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def replica_app(replica, engine, settings, database_url):
    """An app of its own engines: writes on the primary, replica=True reads on the standby."""
    replica.wait_for_replay()  # the suite's schema, built by the `engine` fixture
    app = create_app(
        replace(settings, database_url=database_url, database_read_url=replica.url, rate_limit="")
    )
    yield app
    runtime = app.extensions["points_service"]
    for sessions in (runtime.sessions, runtime.read_sessions):
        sessions.kw["bind"].dispose()


def _codes(page: dict) -> set[str]:
    return {item["practitioner_code"] for item in page["items"]}


def test_the_read_sessions_are_the_standby_and_the_sessions_the_primary(replica_app, replica):
    runtime = replica_app.extensions["points_service"]
    assert runtime.read_sessions is not None
    with runtime.read_sessions() as db:
        assert db.execute(text(WHERE_AM_I)).one() == (True, replica.port)
    with runtime.sessions() as db:
        assert db.execute(text(WHERE_AM_I)).one() == (False, runtime.sessions.kw["bind"].url.port or 5432)


def test_replica_reads_lag_behind_the_primary_until_replayed_then_catch_up(replica_app, replica):
    runtime = replica_app.extensions["points_service"]
    database = runtime.sessions.kw["bind"].url.database
    admin = Api(replica_app.test_client(), make_key(runtime.sessions, "admin"))
    institution = admin.institution()
    first = admin.practitioner()
    admin.register(first, institution, "2025-01-01")
    replica.wait_for_replay()
    runtime.read_sessions.kw["bind"].dispose()
    _until(lambda: replica.client_connections(database) == 0, "the closed connections to end")
    assert admin.get(f"/v1/practitioners/{first}/standing", query={"year": 2026})["points_total"] == 0
    # the app's read pool now holds a connection on the standby
    assert replica.client_connections(database) >= 1

    with replica.replay_paused():
        # writes go to the primary and succeed while the replica is behind
        second = admin.practitioner()
        admin.register(second, institution, "2025-01-01")
        violation = admin.violation(first, institution, decided_on="2026-04-10", behaviour_code="B2-01")
        assert violation["points"] > 0
        # primary-routed reads see them at once
        assert admin.get(f"/v1/practitioners/{second}")["code"] == second
        history = admin.get(f"/v1/practitioners/{first}/history")["items"]
        assert violation["case_ref"] in {item.get("case_ref") for item in history}
        # replica-routed reads answer from the standby, which has not replayed them yet
        admin.get(f"/v1/practitioners/{second}/eligibility", status=404)
        assert admin.get(f"/v1/practitioners/{first}/standing", query={"year": 2026})["points_total"] == 0
        batch = admin.post("/v1/eligibility/batch", {"practitioner_codes": [first, second]}, status=200)
        assert [r["status"] for r in batch["results"]][1] == "unknown"
        assert batch["results"][0]["status"] != "unknown"
        assert _codes(admin.get(f"/v1/institutions/{institution}/eligibility")) == {first}

    # once replay resumes, the same endpoints answer with the writes
    _until(
        lambda: (
            admin.client.get(f"/v1/practitioners/{second}/eligibility", headers=admin.headers).status_code
            == 200
        ),
        "the replica to show the new practitioner",
    )
    standing = admin.get(f"/v1/practitioners/{first}/standing", query={"year": 2026})
    assert standing["points_total"] == violation["points"]
    batch = admin.post("/v1/eligibility/batch", {"practitioner_codes": [first, second]}, status=200)
    assert "unknown" not in [r["status"] for r in batch["results"]]
    assert _codes(admin.get(f"/v1/institutions/{institution}/eligibility")) == {first, second}
    assert admin.get(f"/v1/practitioners/{second}/eligibility")["eligible"] is True


def test_the_replica_refuses_writes(replica_app):
    runtime = replica_app.extensions["points_service"]
    with (
        pytest.raises(DBAPIError, match="read-only transaction") as refused,
        transaction(runtime.read_sessions, write=True) as db,
    ):
        db.add(
            Institution(
                code=code("H"),
                name="written to the replica",
                kind="medical_institution",
                region_code="130100",
                created_at=utc_now(),
            )
        )
        db.flush()
    assert refused.value.orig.sqlstate == "25006"  # read_only_sql_transaction


def test_writes_and_the_key_touch_go_to_the_primary_while_a_read_url_is_set(replica_app, replica):
    runtime = replica_app.extensions["points_service"]
    key = make_key(runtime.sessions, "admin")
    admin = Api(replica_app.test_client(), key)
    person, institution = admin.person()
    replica.wait_for_replay()
    # the first use of a key records last_used_at; after a replica read that must land on the primary
    admin.get(f"/v1/practitioners/{person}/eligibility")
    with runtime.sessions() as db:
        assert db.scalar(select(ApiKey.last_used_at).where(ApiKey.key_hash == hash_key(key))) is not None

    case_ref = code("REPLICA-")
    created = admin.violation(person, institution, case_ref=case_ref)
    assert created["case_ref"] == case_ref
    with runtime.sessions() as db:
        assert db.scalar(select(Violation.points).where(Violation.case_ref == case_ref)) == created["points"]
