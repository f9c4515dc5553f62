"""Where a running install keeps its files and which database it talks to (CONTRACTS §2)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = "medssl_data"


def normalize_db_url(url: str) -> str:
    """psycopg 3 is our PostgreSQL driver, so a bare postgresql:// URL is rewritten to use it."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def sqlite_file(db_url: str) -> Path | None:
    """The database file of a plain SQLite URL (`sqlite:///path`); None for a server database, an in-memory
    database or a `file:` URI (a read-only snapshot opened by its URI)."""
    if not db_url.startswith("sqlite"):
        return None
    path = db_url.split("///", 1)[-1]
    return None if not path or path == ":memory:" or path.startswith("file:") else Path(path)


@dataclass(frozen=True)
class StoreConfig:
    """The data folder (MEDSSL_HOME) and the database URL; everything an install writes lives under home."""

    home: Path
    db_url: str

    @classmethod
    def from_env(cls, home: str | os.PathLike | None = None, db: str | None = None) -> StoreConfig:
        home_path = Path(home or os.environ.get("MEDSSL_HOME") or DEFAULT_HOME).expanduser().resolve()
        url = db or os.environ.get("MEDSSL_DB") or f"sqlite:///{home_path / 'medssl.db'}"
        return cls(home=home_path, db_url=normalize_db_url(url))

    @property
    def images_dir(self) -> Path:
        return self.home / "images"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def masks_dir(self) -> Path:
        return self.home / "masks"

    @property
    def checkpoints_dir(self) -> Path:
        return self.home / "checkpoints"

    @property
    def exports_dir(self) -> Path:
        return self.home / "exports"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    def ensure_dirs(self) -> None:
        for folder in (self.images_dir, self.cache_dir, self.masks_dir, self.checkpoints_dir,
                       self.exports_dir, self.logs_dir):
            folder.mkdir(parents=True, exist_ok=True)
