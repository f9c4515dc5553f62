"""Alembic environment: uses the caller's connection when given (init_db), else the configured URL."""
from __future__ import annotations

import os

from alembic import context

from db.config import normalize_db_url
from db.engine import make_engine
from db.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = normalize_db_url(os.environ.get("MEDSSL_DB") or config.get_main_option("sqlalchemy.url"))
    with make_engine(url).connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        conn.commit()


run_migrations()
