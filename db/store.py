"""Open a store (engine + migrated schema + session factory) from a StoreConfig, once per process."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from db.config import StoreConfig
from db.engine import init_db, make_engine, make_session_factory
from db.patient_secret import migrate_legacy_secret


@dataclass
class Store:
    config: StoreConfig
    sql_engine: Engine
    sessions: sessionmaker[Session]

    def dispose(self) -> None:
        self.sql_engine.dispose()


def open_store(config: StoreConfig, migrate: bool = True) -> Store:
    """Create folders, connect, and bring the schema to head so every entry point sees the same tables."""
    if migrate:  # a read-only open (migrate=False) must not try to create folders
        config.ensure_dirs()
    sql_engine = make_engine(config.db_url)
    if migrate:
        init_db(sql_engine)
    sessions = make_session_factory(sql_engine)
    if migrate:
        migrate_legacy_secret(sessions, config.home)
    return Store(config=config, sql_engine=sql_engine, sessions=sessions)
