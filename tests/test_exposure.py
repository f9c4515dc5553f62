"""The launcher binds to loopback from any directory; an unchosen wide bind serves no data (issue 12)."""
from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from streamlit import config

from app.exposure import DEFINED_BY_FLAG, exposure_problem, is_loopback
from engine.cli import main
from tests.conftest import REPO_ROOT
from tests.test_views import _app


def test_exposure_rules() -> None:
    assert is_loopback("localhost") and is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("[::1]")
    assert not is_loopback(None) and not is_loopback("") and not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    assert exposure_problem("localhost", "<default>", {}) is None
    assert exposure_problem("0.0.0.0", DEFINED_BY_FLAG, {}) is None           # --server.address: a choice
    assert exposure_problem(None, "<default>", {"MEDSSL_ALLOW_REMOTE": "1"}) is None
    assert "every network interface" in exposure_problem(None, "<default>", {})
    assert "0.0.0.0" in exposure_problem("0.0.0.0", "/etc/streamlit/config.toml", {})


def test_app_listening_everywhere_by_accident_shows_only_the_explanation(monkeypatch) -> None:
    assert main(["import", "--project", "secret-study", "--task", "multiclass", "--classes", "a,b", "--source",
                 str(REPO_ROOT / "tests" / "fixtures")]) in (0, 1)
    monkeypatch.delenv("MEDSSL_ALLOW_REMOTE", raising=False)
    previous = config.get_option("server.address")
    config.set_option("server.address", None, "<default>")
    try:
        at = _app().run()
    finally:
        config.set_option("server.address", previous, "<default>")
    assert not at.exception
    assert any("serves no data" in e.value for e in at.error)
    assert not at.sidebar.selectbox and not at.title and not at.metric


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> set[str]:
    """Local addresses with a LISTEN socket on `port`, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
def test_launcher_from_another_directory_listens_on_loopback_only(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "MEDSSL_HOME": str(tmp_path / "home"), "MEDSSL_AUTOSTART_WORKER": "0"}
    env.pop("MEDSSL_ALLOW_REMOTE", None)
    proc = subprocess.Popen([str(REPO_ROOT / "medssl"), "app", "--server.port", str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not _listening(port):
            assert proc.poll() is None, proc.stdout.read().decode()
            time.sleep(0.3)
        addresses = _listening(port)
        assert addresses, "the app did not start"
        loopback = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 / ::1 as /proc writes them
        assert addresses <= loopback, addresses
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=10) as reply:
            assert reply.read() == b"ok"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)


def test_repo_config_and_launcher_agree_on_the_user_facing_settings() -> None:
    import tomllib

    config = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "localhost" and config["browser"]["gatherUsageStats"] is False
    assert config["client"] == {"showErrorDetails": "type", "toolbarMode": "viewer"}
    launcher = (REPO_ROOT / "medssl").read_text()
    for flag in ("--server.address=localhost", "--browser.gatherUsageStats=false", "--server.headless=true",
                 "--client.showErrorDetails=type", "--client.toolbarMode=viewer"):
        assert flag in launcher


def test_a_failing_page_shows_one_line_and_logs_the_traceback(_isolated_home, monkeypatch) -> None:
    from app.views import projects

    def broken() -> None:
        raise KeyError("roc")

    monkeypatch.setattr(projects, "render", broken)
    at = _app().run()
    assert not at.exception
    assert any(e.value.startswith("This page stopped") and "roc" in e.value for e in at.error)
    log = (_isolated_home / "logs" / "app.log").read_text()
    assert "Traceback" in log and "KeyError: 'roc'" in log
