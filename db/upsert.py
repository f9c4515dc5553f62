"""INSERT … ON CONFLICT DO NOTHING on SQLite and PostgreSQL alike (both dialects spell it the same way)."""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session


def insert_ignore(session: Session, model: type, values: dict[str, Any]) -> int:
    """Insert one row unless it breaks a unique constraint; returns 1 when inserted, else 0.

    A conflict does not abort the transaction (an IntegrityError on PostgreSQL would), so callers can race
    for a slot and simply try the next one. RETURNING tells whether the row went in: psycopg reports
    rowcount -1 for this statement through SQLAlchemy.
    """
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = model.__table__
    key = next(iter(table.primary_key.columns))
    statement = insert(table).values(**values).on_conflict_do_nothing().returning(key)
    return int(session.execute(statement).first() is not None)
