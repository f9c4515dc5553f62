"""Shared fixtures: a temporary store (SQLite always, PostgreSQL when MEDSSL_TEST_PG_URL is set)."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from db.config import StoreConfig, normalize_db_url
from db.store import Store, open_store

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """../shared/data beside the checkout (resolved from the repo root), or $MEDSSL_SHARED_DATA."""
    return Path(os.environ.get("MEDSSL_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")


def shared_file(relative: str) -> Path:
    path = shared_data_dir() / relative
    if not path.exists():
        pytest.skip(f"real data not available: {path} is missing (CI has ../shared beside the checkout)")
    return path


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test writes into the checkout: MEDSSL_HOME points into the test's tmp dir."""
    home = tmp_path / "medssl_home"
    monkeypatch.setenv("MEDSSL_HOME", str(home))
    monkeypatch.delenv("MEDSSL_DB", raising=False)
    monkeypatch.setenv("MEDSSL_USER", "tester")
    monkeypatch.setenv("MEDSSL_WARM_UMAP", "0")
    monkeypatch.setenv("MEDSSL_AUTH", "off")   # single-user mode (loopback); tests of accounts turn it back on
    monkeypatch.setenv("MEDSSL_SECRETS_DIR", str(tmp_path / "secrets"))  # PACS secrets never in ~/.config
    monkeypatch.setenv("MEDSSL_AUTOSTART_WORKER", "0")  # tests start workers themselves   # warm-up costs a core for ~1 min; tests skip it
    return home


def _pg_database(base_url: str):
    """Create a throwaway database on the test cluster; yields its URL and drops it afterwards."""
    from sqlalchemy import create_engine, text

    admin = create_engine(normalize_db_url(base_url), isolation_level="AUTOCOMMIT")
    name = f"medssl_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = normalize_db_url(base_url).rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("MEDSSL_TEST_PG_URL") else [])


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path):
    """Database URL for store tests: parametrized over every backend available."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'medssl_home' / 'medssl.db'}"
    else:
        yield from _pg_database(os.environ["MEDSSL_TEST_PG_URL"])


@pytest.fixture
def store(db_url: str, _isolated_home: Path) -> Store:
    opened = open_store(StoreConfig.from_env(home=_isolated_home, db=db_url))
    yield opened
    opened.dispose()


@pytest.fixture
def sqlite_store(_isolated_home: Path) -> Store:
    opened = open_store(StoreConfig.from_env(home=_isolated_home))
    yield opened
    opened.dispose()
