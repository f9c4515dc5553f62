"""Library logging (pydicom decoders, numba, umap, PIL) goes to MEDSSL_HOME/logs/libraries.log, not the console.

pydicom logs a traceback for every decoder plugin that declines a frame, even when the file is then rejected
with a clear reason (CONTRACTS §9): a normal import of pydicom's own test files printed 229 lines of them.
The console keeps the command's report; the details stay available in the log file.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LIBRARIES = ("pydicom", "numba", "umap", "pynndescent", "PIL", "matplotlib", "h5py", "dicomweb_client", "highdicom",
             "urllib3")
_HANDLER_NAME = "medssl-libraries"
_routed: list[Path] = []  # the log file of this process, once route_library_logs ran
_native_lock = threading.Lock()


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


def append_traceback(path: Path, error: BaseException | str, header: str = "") -> Path | None:
    """Append a traceback (an exception, or its formatted text) to a log file; None when it cannot be written.
    The CLI (logs/cli.log), the app (logs/app.log) and the worker (logs/job-<id>.log) keep theirs this way."""
    import datetime as dt
    import traceback

    text = error if isinstance(error, str) else "".join(traceback.format_exception(error))
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with Path(path).open("a") as fh:
            if header:
                fh.write(f"--- {dt.datetime.now().isoformat(timespec='seconds')} {header}\n")
            fh.write(text)
    except OSError:
        return None
    return Path(path)


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
    _routed[:] = [path]
    return path


@contextmanager
def native_stderr_to_log() -> Iterator[None]:
    """While decoding, what C decoders (OpenJPEG) write to the process's stderr goes to libraries.log too.

    A no-op until route_library_logs ran (tests, library use); serialised, because file descriptor 2 is
    process-wide and another thread may decode at the same time.
    """
    if not _routed:
        yield
        return
    with _native_lock:
        try:
            _routed[0].parent.mkdir(parents=True, exist_ok=True)
            target = os.open(_routed[0], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError:
            yield
            return
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(target, 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            os.close(target)
