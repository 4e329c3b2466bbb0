"""Engines and sessions: SQLite pragmas and BEGIN IMMEDIATE, PostgreSQL locks and timeouts."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from psycopg.types.json import set_json_loads
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

WRITE = {"points_write": True}


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the per-dialect fixes this service relies on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        options: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if parsed.database in (None, "", ":memory:"):
            options["poolclass"] = StaticPool
        engine = create_engine(url, **options, **kwargs)
        _fix_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _fast_json(dbapi_connection: Any, _record: Any) -> None:
        # snapshots are JSON: a batch of 1000 spent a third of its time in the stdlib's decoder
        set_json_loads(orjson.loads, dbapi_connection)

    return engine


def make_web_engine(url: str, **kwargs: Any) -> Engine:
    """The web app's engine: no ping before each checkout.

    A ping is a round trip on every request. Instead, a read that finds its connection dead is
    run once more (api.base.Blueprint.requires): the first disconnect invalidates the whole pool,
    so the retry, and every request after it, gets a fresh connection.
    """
    kwargs.setdefault("pool_pre_ping", False)
    return make_engine(url, **kwargs)


def read_only(engine: Engine) -> Engine:
    """The same pool, in autocommit for read-only use cases on PostgreSQL.

    Under READ COMMITTED each statement has its own snapshot anyway, so a read transaction adds
    nothing but two round trips (BEGIN and COMMIT) per request. SQLite keeps its transactions:
    there a read transaction is one snapshot, and the write lock logic relies on BEGIN.
    """
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


def _fix_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling breaks savepoints and defers BEGIN; take it over
    # (the SQLAlchemy "serializable isolation / savepoints" recipe).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A deferred BEGIN that later writes fails at once with "database is locked" and ignores
        # busy_timeout; write use cases ask for IMMEDIATE so they queue on the write lock instead.
        conn.exec_driver_sql(
            "BEGIN IMMEDIATE" if conn.get_execution_options().get("points_write") else "BEGIN"
        )


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session], *, write: bool) -> Iterator[Session]:
    """One transaction per use case, committed here at the edge, rolled back on any error. A read
    has nothing to commit: it is closed, which ends its transaction without the commit's work."""
    session = factory()
    try:
        if write:
            session.connection(execution_options=WRITE)
        yield session
        if write:
            session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# what a read that needs rows only runs on: an ORM session, or a Core connection (`reading`)
Reader = Session | Connection


@contextmanager
def reading(factory: sessionmaker[Session]) -> Iterator[Connection]:
    """A read that needs rows only, on a Core connection of the factory's engine, with no Session.

    The three hot reads (one eligibility, a batch, a roster page) build no ORM object; a Session's
    bookkeeping around their one statement (its transaction object, the connection's checkout and
    close through it) cost as much, per request, as the statement (docs/decisions.md). A factory
    already bound to an open connection (a caller's own transaction, as the tests join theirs) reads
    on that connection and leaves it open.
    """
    bind = factory.kw["bind"]
    if isinstance(bind, Connection):
        yield bind
        return
    with bind.connect() as connection:
        yield connection


def rows_on(reader: Reader) -> Connection:
    """The connection a read's plain statements run on: a session's own, or the connection itself."""
    return reader.connection() if isinstance(reader, Session) else reader


def is_postgresql(session_or_engine: Session | Engine | Connection) -> bool:
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, Session) else session_or_engine
    return bind.dialect.name == "postgresql"


def lock_key(name: str) -> int:
    """A stable 32-bit key for pg advisory locks."""
    return zlib.crc32(name.encode("utf-8"))


def try_advisory_xact_lock(session: Session, name: str) -> bool:
    """Take a transaction-scoped advisory lock on PostgreSQL; SQLite's write lock already serialises."""
    if not is_postgresql(session):
        return True
    return bool(session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": lock_key(name)}).scalar())
