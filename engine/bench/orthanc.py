"""A real, throwaway Orthanc (Debian packages orthanc + orthanc-dicomweb) for the PACS tests and benchmark."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def missing_reason() -> str | None:
    if not Path(ORTHANC).exists():
        return "Orthanc is not installed (apt-get install orthanc orthanc-dicomweb; .ci/run does)"
    if not DICOMWEB_PLUGIN.exists():
        return f"the Orthanc DICOMweb plugin is missing ({DICOMWEB_PLUGIN}; apt-get install orthanc-dicomweb)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def orthanc(folder: Path, users: dict[str, str] | None = None) -> Iterator[str]:
    """Start Orthanc on a free loopback port with storage in `folder`; yields its DICOMweb root URL."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {"Name": "medssl-test", "HttpPort": port, "DicomPort": 0, "StorageDirectory": str(folder / "db"),
              "IndexDirectory": str(folder / "db"), "RemoteAccessAllowed": False,
              "AuthenticationEnabled": bool(users), "RegisteredUsers": users or {},
              "Plugins": [str(DICOMWEB_PLUGIN)], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
              "HttpTimeout": 60, "HttpThreadsCount": 16}
    (folder / "orthanc.json").write_text(json.dumps(config))
    log = (folder / "orthanc.log").open("w")
    process = subprocess.Popen([ORTHANC, str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT,
                               cwd=folder)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"Orthanc exited: {(folder / 'orthanc.log').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("Orthanc did not start in 30 s")
        yield f"http://127.0.0.1:{port}/dicom-web"
    finally:
        process.kill()   # throwaway storage: no need for Orthanc's slow graceful shutdown
        process.wait(10)
        log.close()
