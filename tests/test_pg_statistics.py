"""A bulk import leaves PostgreSQL with planner statistics (a lease once waited 45 s for a plan made without)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from engine.data.importer import STATISTICS_AFTER, ImportRequest, run_import


def test_bulk_import_refreshes_postgresql_statistics(store, tmp_path: Path) -> None:
    if store.sql_engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite plans without statistics here")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "train.npz", images=rng.integers(0, 255, (STATISTICS_AFTER, 8, 8), dtype=np.uint8),
             labels=np.arange(STATISTICS_AFTER) % 2)
    run_import(store, ImportRequest(project="p", source=tmp_path / "train.npz", task="multiclass",
                                    classes=["a", "b"]))
    with store.sql_engine.connect() as connection:
        analyzed = connection.execute(text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'image'"))
        assert analyzed.scalar() is not None
