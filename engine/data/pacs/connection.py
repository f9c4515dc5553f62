"""A project's PACS connection: the URL and auth kind are project settings; the secret lives in a 0600 file
outside MEDSSL_HOME (never in the database, logs or exports), or is given per command with --auth-file."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

AUTH_KINDS = ("none", "basic", "bearer")
SECRETS_ENV = "MEDSSL_SECRETS_DIR"
DEFAULT_TIMEOUT_S = 30.0
RETRY_ATTEMPTS = 3
RETRY_WAIT_MS = 100


class PacsError(RuntimeError):
    """One line a PACS user can act on (what failed, what to do)."""


@dataclass(frozen=True)
class PacsConnection:
    url: str
    auth: str = "none"
    username: str | None = None
    secret: str | None = field(default=None, repr=False)
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        check_url(self.url)
        if self.auth not in AUTH_KINDS:
            raise PacsError(f"auth must be one of {', '.join(AUTH_KINDS)}, not {self.auth!r}")

    @property
    def shown_url(self) -> str:
        return redact(self.url)


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PacsError(f"not a DICOMweb URL: {redact(url)!r} (write http(s)://host:port/dicom-web)")
    if parts.username or parts.password:
        raise PacsError("put credentials in --auth-file (or the saved connection), not in the URL")
    return url


def redact(url: str) -> str:
    """The URL without user:password@, for messages and logs."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def read_auth_file(path: Path) -> tuple[str, str | None, str]:
    """'user:password' (basic) or 'Bearer TOKEN' (bearer), first line of a file the user controls."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip().splitlines()
    except OSError as exc:
        raise PacsError(f"cannot read auth file {path}: {exc.strerror}") from None
    line = text[0].strip() if text else ""
    match = re.fullmatch(r"(?i)bearer\s+(\S+)", line)
    if match:
        return "bearer", None, match.group(1)
    user, sep, password = line.partition(":")
    if not sep or not user:
        raise PacsError(f"auth file {path}: write 'user:password' or 'Bearer TOKEN' on its first line")
    return "basic", user, password


def secrets_dir() -> Path:
    return Path(os.environ.get(SECRETS_ENV) or Path.home() / ".config" / "medssl" / "pacs").expanduser()


def _secret_path(project_id: int) -> Path:
    return secrets_dir() / f"project-{project_id}.secret"


def save_secret(project_id: int, secret: str | None) -> None:
    path = _secret_path(project_id)
    if not secret:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret)


def load_secret(project_id: int) -> str | None:
    try:
        return _secret_path(project_id).read_text(encoding="utf-8") or None
    except OSError:
        return None


def saved_connection(project) -> PacsConnection | None:
    """The project's saved connection (settings pacs_url/pacs_auth/pacs_user + the secret file), if any."""
    settings = project.settings or {}
    url = settings.get("pacs_url") or ""
    if not url:
        return None
    auth = settings.get("pacs_auth") or "none"
    return PacsConnection(url, auth, settings.get("pacs_user") or None,
                          load_secret(project.id) if auth != "none" else None)


def connection_for(url: str | None, project, auth_file: Path | None = None) -> PacsConnection:
    """--dicomweb URL [--auth-file F], else the project's saved connection."""
    saved = saved_connection(project) if project is not None else None
    if url is None:
        if saved is None:
            raise PacsError("no DICOMweb URL: give --dicomweb URL or save a PACS connection on the Projects page")
        url = saved.url
    if auth_file is not None:
        auth, user, secret = read_auth_file(auth_file)
        return PacsConnection(url, auth, user, secret)
    if saved is not None and saved.url.rstrip("/") == url.rstrip("/"):
        return saved
    return PacsConnection(url)


def client(connection: PacsConnection):
    """A dicomweb-client with the connection's credentials on the requests session (never in the URL)."""
    import requests
    from dicomweb_client.api import DICOMwebClient

    session = requests.Session()
    if connection.auth == "basic":
        session.auth = (connection.username or "", connection.secret or "")
    elif connection.auth == "bearer":
        session.headers["Authorization"] = f"Bearer {connection.secret or ''}"
    dw = DICOMwebClient(connection.url.rstrip("/"), session=session, timeout=connection.timeout_s)
    # dicomweb-client retries every failure (a refused connection too) 5 times with waits of 1, 2, 4, 8 s: half
    # a minute before "cannot reach" on a typo. Three tries 0.2 s and 0.4 s apart still ride out a busy server.
    dw.set_http_retry_params(retry=True, max_attempts=RETRY_ATTEMPTS, wait_exponential_multiplier=RETRY_WAIT_MS)
    return dw
