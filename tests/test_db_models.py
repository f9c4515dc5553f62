"""Schema: migrations build exactly the models' schema, on every backend."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from db.engine import init_db
from db.models import Base


def test_migrations_match_models(store) -> None:
    with store.sql_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"


def test_expected_tables_exist(store) -> None:
    tables = set(inspect(store.sql_engine).get_table_names())
    expected = {"project", "image", "label", "annotator", "job", "checkpoint", "prediction", "uncertainty",
                "embedding", "projection", "relation_edge", "worker", "setting", "skip"}
    assert expected <= tables


def test_init_is_idempotent(store) -> None:
    init_db(store.sql_engine)
    init_db(store.sql_engine)
    assert "project" in inspect(store.sql_engine).get_table_names()


def test_sqlite_pragmas(sqlite_store) -> None:
    with sqlite_store.sql_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
