"""Engine and session factory; `init_db` brings any database to the newest schema through Alembic."""
from __future__ import annotations

import os
import select
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker

from db.config import sqlite_file
from db.json_columns import dumps as json_dumps

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def _configure_sqlite(dbapi_connection, _record) -> None:
    """WAL lets the app read while the worker writes; FKs are off by default in SQLite."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA mmap_size=268435456")
    cursor.close()


def pool_size() -> int:
    """PostgreSQL connections kept open per process (MEDSSL_DB_POOL_SIZE, default 20).

    The app server is one process whose browser sessions are threads: with SQLAlchemy's default of 5, a
    sixth reader at once got an overflow connection that was closed again on return, so busy moments paid
    for new backends (a fork on the server, several ms) inside a lease. 20 covers a reading room; each
    worker process needs few, and PostgreSQL allows 100 by default."""
    return max(1, int(os.environ.get("MEDSSL_DB_POOL_SIZE", "20")))


def make_engine(url: str) -> Engine:
    """One place that knows dialect quirks; nothing else in the code base issues SQLite-only SQL."""
    if url.startswith("sqlite"):
        if url.split("///", 1)[-1].startswith("file:"):  # a URI (read-only snapshot): nothing to create, no WAL
            return create_engine(url, json_serializer=json_dumps)
        if (db_file := sqlite_file(url)) is not None:
            db_file.parent.mkdir(parents=True, exist_ok=True)
        sql_engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
                                   json_serializer=json_dumps)
        event.listen(sql_engine, "connect", _configure_sqlite)
        return sql_engine
    sql_engine = create_engine(url, json_serializer=json_dumps, pool_size=pool_size(), max_overflow=10)
    event.listen(sql_engine, "checkout", _drop_if_server_hung_up)
    return sql_engine


def _drop_if_server_hung_up(dbapi_connection, _record, _proxy) -> None:
    """Liveness check of a pooled PostgreSQL connection without a round trip (instead of pool_pre_ping).

    An idle connection has nothing to read: if its socket is readable, the server sent a goodbye (a restart's
    "terminating connection", a killed backend) or closed it, and the pool opens a new connection instead of
    handing out a dead one. pool_pre_ping's empty query cost one more round trip in every transaction
    (~0.3 ms on the CI machine, a tenth of a lease in engine.bench.reader_load).
    """
    pgconn = getattr(dbapi_connection, "pgconn", None)
    if pgconn is None:   # not psycopg 3: nothing to look at without a round trip
        return
    from psycopg import pq

    if dbapi_connection.closed or pgconn.status != pq.ConnStatus.OK:
        raise exc.DisconnectionError("connection closed")
    readable, _, _ = select.select([pgconn.socket], [], [], 0)
    if readable:
        raise exc.DisconnectionError("the server sent data to an idle connection (restart or terminated backend)")


def make_session_factory(sql_engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(sql_engine, expire_on_commit=False)


@contextmanager
def write_session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction that writes from its first statement on, so read-then-write stays atomic.

    SQLite: BEGIN IMMEDIATE takes the write lock up front (a deferred transaction that read first fails with
    "database is locked" when another writer committed in between, instead of waiting). PostgreSQL: a plain
    transaction; the callers lock the rows they change (SELECT … FOR UPDATE).
    """
    with sessions.begin() as session:
        if session.get_bind().dialect.name == "sqlite":
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        yield session


def alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def init_db(sql_engine: Engine) -> None:
    """Run migrations to head on this engine's database (idempotent)."""
    from alembic import command

    config = alembic_config(sql_engine.url.render_as_string(hide_password=False))
    with sql_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def refresh_statistics(sql_engine, table: str | None = None, vacuum: bool = False) -> None:
    """PostgreSQL: ANALYZE after a bulk write. Until autovacuum gets to a table filled in one go, the planner
    takes it for nearly empty and may walk 100,000 rows where an index finds one (a lease once took 45 s in
    engine.bench.reader_load). `vacuum` also clears the dead rows of a bulk UPDATE now, so autovacuum does not
    start on the table later while readers work. SQLite plans without statistics here; nothing to do."""
    if sql_engine.dialect.name != "postgresql":
        return
    if table is not None and not table.isidentifier():
        raise ValueError(f"not a table name: {table!r}")
    with sql_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"{'VACUUM (ANALYZE)' if vacuum else 'ANALYZE'} {table or ''}".strip())
