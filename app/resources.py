"""Process-wide store (engine + session factory), created once per configuration."""
from __future__ import annotations

import streamlit as st

from db.config import StoreConfig
from db.store import Store, open_store
from engine.data.library_logs import route_library_logs


@st.cache_resource
def _open(config: StoreConfig) -> Store:
    route_library_logs(config.logs_dir)  # uploads are decoded in this process: pydicom noise goes to logs/
    return open_store(config)


def get_store() -> Store:
    """MEDSSL_HOME / MEDSSL_DB from the environment, as the CLI reads them."""
    return _open(StoreConfig.from_env())
