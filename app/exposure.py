"""Refuse to serve data when the app listens beyond loopback without anyone having chosen that.

Streamlit reads `.streamlit/config.toml` from the current directory only, so `streamlit run` started from any
other folder listens on every interface. `medssl app` passes loopback explicitly; binding wider is a choice
made with `--server.address` (a command-line flag or STREAMLIT_SERVER_ADDRESS) or MEDSSL_ALLOW_REMOTE=1.
Without that choice the app shows only this explanation, no project, image or name.
"""
from __future__ import annotations

import ipaddress
import os

DEFINED_BY_FLAG = "command-line argument or environment variable"  # streamlit.config's marker


def is_loopback(address: str | None) -> bool:
    if not address:
        return False  # Streamlit's default (unset) binds every interface
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_problem(address: str | None, defined_by: str, env: dict[str, str] | None = None) -> str | None:
    """None when serving is fine; else the one explanation the page shows instead of any data."""
    env = os.environ if env is None else env
    if is_loopback(address) or env.get("MEDSSL_ALLOW_REMOTE") == "1" or defined_by == DEFINED_BY_FLAG:
        return None
    where = f"address {address!r}" if address else "every network interface (no server.address set)"
    return (f"MedSSL Studio is listening on {where}, which nobody chose explicitly, so it serves no data. "
            "Start it with `medssl app` (loopback only), or choose a wider bind explicitly with "
            "`medssl app --server.address ADDRESS` or MEDSSL_ALLOW_REMOTE=1.")


def current_problem() -> str | None:
    """exposure_problem for the running Streamlit server."""
    from streamlit import config

    return exposure_problem(config.get_option("server.address"), config.get_where_defined("server.address"))
