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
