"""Library logging (pydicom decoders, numba, umap, PIL) goes to MEDSSL_HOME/logs/libraries.log, not the console.

pydicom logs a traceback for every decoder plugin that declines a frame, even when the file is then rejected
with a clear reason (CONTRACTS §9): a normal import of pydicom's own test files printed 229 lines of them.
The console keeps the command's report; the details stay available in the log file.
"""
from __future__ import annotations

import logging
from pathlib import Path

LIBRARIES = ("pydicom", "numba", "umap", "pynndescent", "PIL", "matplotlib", "h5py")
_HANDLER_NAME = "medssl-libraries"


class _LazyFileHandler(logging.FileHandler):
    """Creates its folder and file on the first record only, so a quiet command leaves no trace on disk."""

    def _open(self):
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            super().emit(record)
        except OSError:  # a read-only home: drop library noise rather than fail the command
            pass


def route_library_logs(logs_dir: Path) -> Path:
    """Attach one file handler per process to the library loggers (idempotent)."""
    path = Path(logs_dir) / "libraries.log"
    handler = _LazyFileHandler(path, delay=True)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in LIBRARIES:
        lib = logging.getLogger(name)
        lib.propagate = False  # never the console
        for old in [h for h in lib.handlers if h.get_name() == _HANDLER_NAME]:
            if getattr(old, "baseFilename", None) == handler.baseFilename:
                break
            lib.removeHandler(old)  # another MEDSSL_HOME in this process (tests, a second store): follow it
            old.close()
        else:
            lib.addHandler(handler)
    return path
