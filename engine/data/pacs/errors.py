"""HTTP and network failures of a DICOMweb call as one line that says what to do."""
from __future__ import annotations


def http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def explain(exc: BaseException, what: str, url: str) -> str:
    import requests

    status = http_status(exc)
    if isinstance(exc, requests.exceptions.Timeout):
        return (f"{what}: the server at {url} did not answer in time; re-run the same command to continue "
                "(what was fetched stays imported)")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"{what}: cannot reach the DICOMweb server at {url}; check the URL and that the server is running"
    if status == 401:
        return f"{what}: the server at {url} asks for credentials (HTTP 401); give --auth-file or save them on " \
               "the Projects page"
    if status == 403:
        return f"{what}: the server at {url} refused these credentials access (HTTP 403); ask the PACS admin"
    if status == 404:
        return f"{what}: not found on the server (HTTP 404): deleted since the search, or a wrong UID or URL"
    if status == 406:
        return f"{what}: the server cannot send this object in a transfer syntax we decode (HTTP 406)"
    if status is not None:
        return f"{what}: the server at {url} answered HTTP {status}"
    return f"{what}: {type(exc).__name__}: {exc}"
