"""A pooled PostgreSQL connection the server dropped is replaced at checkout, with no round trip spent on
connections that are fine (db.engine._drop_if_server_hung_up replaces pool_pre_ping)."""
from __future__ import annotations

import os
import time

import pytest
from sqlalchemy import event, text

from db.engine import make_engine

pytestmark = pytest.mark.skipif(not os.environ.get("MEDSSL_TEST_PG_URL"),
                                reason="needs PostgreSQL (MEDSSL_TEST_PG_URL; .ci/run starts one)")


def test_a_terminated_backend_is_replaced_before_use() -> None:
    engine = make_engine(os.environ["MEDSSL_TEST_PG_URL"])
    try:
        with engine.connect() as connection:
            victim = connection.scalar(text("SELECT pg_backend_pid()"))
        with make_engine(os.environ["MEDSSL_TEST_PG_URL"]).connect() as admin:
            assert admin.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
            for _ in range(100):   # terminate only signals: wait until the backend has gone (and said so)
                gone = not admin.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                                        {"pid": victim})
                if gone:
                    break
                admin.rollback()   # a fresh snapshot of pg_stat_activity
                time.sleep(0.05)
            assert gone
        with engine.connect() as connection:   # the pooled connection is dead: a new one, no error
            assert connection.scalar(text("SELECT pg_backend_pid()")) != victim
    finally:
        engine.dispose()


def test_a_healthy_pooled_connection_costs_no_extra_statement() -> None:
    engine = make_engine(os.environ["MEDSSL_TEST_PG_URL"])
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    try:
        with engine.connect() as connection:
            first = connection.scalar(text("SELECT pg_backend_pid()"))
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT pg_backend_pid()")) == first   # reused
        assert statements == ["SELECT pg_backend_pid()"] * 2
    finally:
        engine.dispose()


def test_twelve_sessions_at_once_reuse_their_connections_next_time() -> None:
    """The app server's browser sessions are threads of one process: 12 at once must not open new backends
    on every busy moment (SQLAlchemy's default pool kept 5 and closed the overflow on return, so 7 of 12
    leases paid a PostgreSQL connect each round; issue 14's thread-shape p95)."""
    import threading

    engine = make_engine(os.environ["MEDSSL_TEST_PG_URL"])
    opened = []
    event.listen(engine, "connect", lambda *_: opened.append(1))
    try:
        for _ in range(3):
            barrier = threading.Barrier(12)

            def hold(barrier: threading.Barrier = barrier) -> None:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
                    barrier.wait(10)          # all twelve hold a connection at the same moment

            threads = [threading.Thread(target=hold) for _ in range(12)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
        assert len(opened) == 12
    finally:
        engine.dispose()
