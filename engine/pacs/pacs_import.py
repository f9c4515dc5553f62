"""Import over DICOMweb: find instances (QIDO-RS), fetch them (WADO-RS, a few in flight at once) and hand the
decoded frames to the same pipeline as a file import (de-identification allow-list, patient-key HMAC, content
dedupe, batched commits). Instances already imported are not fetched again."""
from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from db.dicom_sources import known_instances
from db.projects import get_project
from db.store import Store
from engine.data.dicom import decode_dataset
from engine.data.importer import ImportRequest, ingest
from engine.data.pixels import ImageReadError
from engine.data.report import ImportReport
from engine.data.source_types import Rejected, SourceInfo, SourceItem
from engine.pacs.connection import PacsConnection, PacsError, client
from engine.pacs.errors import explain, http_status
from engine.pacs.query import InstanceRef, find_instances, is_image

FETCH_THREADS = 4
WINDOW = 32  # instances in flight or waiting to be stored: bounds memory
ANY_SYNTAX = (("application/dicom", "*"),)  # as stored: our decoders handle the compressed syntaxes


@dataclasses.dataclass
class PacsRequest:
    connection: PacsConnection
    studies: list[str] | None = None
    query: str | None = None
    limit: int | None = None


class _Fetcher:
    """Yields SourceItems per frame; a timeout or lost connection stops the stream and is remembered, so what
    was fetched before stays imported and the message tells the user to re-run."""

    def __init__(self, connection: PacsConnection):
        self.connection = connection
        self.local = threading.local()
        self.interrupted: str | None = None

    def _client(self):
        if not hasattr(self.local, "dw"):
            self.local.dw = client(self.connection)
        return self.local.dw

    def _fetch(self, ref: InstanceRef):
        import requests

        try:
            return self._client().retrieve_instance(ref.study, ref.series, ref.sop, media_types=ANY_SYNTAX)
        except requests.exceptions.HTTPError as exc:
            return exc
        except requests.exceptions.RequestException as exc:
            return exc

    def items(self, refs: list[InstanceRef]) -> Iterator[SourceItem | Rejected]:
        import requests

        with ThreadPoolExecutor(FETCH_THREADS) as pool:
            for start in range(0, len(refs), WINDOW):
                chunk = refs[start:start + WINDOW]
                for ref, result in zip(chunk, pool.map(self._fetch, chunk)):
                    if isinstance(result, requests.exceptions.HTTPError) and http_status(result) in (404, 406, 410):
                        yield Rejected(f"instance {ref.sop}", explain(result, "fetch", self.connection.shown_url))
                        continue
                    if isinstance(result, BaseException):
                        self.interrupted = explain(result, f"fetching instance {ref.sop}", self.connection.shown_url)
                        return
                    yield from _frames(ref, result)


def _frames(ref: InstanceRef, ds) -> Iterator[SourceItem | Rejected]:
    try:
        images = decode_dataset(ds, strict=True)
    except ImageReadError as error:
        hint = "; ask the PACS to send it uncompressed" if "decode" in str(error) else ""
        yield Rejected(f"instance {ref.sop}", f"{error}{hint}")
        return
    for k, image in enumerate(images):
        name = f"instance {ref.sop}" + (f" frame {k + 1}" if len(images) > 1 else "")
        yield SourceItem(name=name, image=image, label=None, dicom_ref={
            "study_uid": ref.study, "series_uid": ref.series, "sop_uid": ref.sop,
            "sop_class_uid": str(ds.get("SOPClassUID") or ref.sop_class), "frame_number": k + 1,
            "frames": len(images)})


def run_pacs_import(store: Store, request: ImportRequest, pacs: PacsRequest,
                    on_progress: Callable[[int, int | None], None] | None = None) -> ImportReport:
    """Find, skip what is known, fetch and ingest; raises PacsError when the search itself fails."""
    import requests

    url = pacs.connection.shown_url
    try:
        refs = find_instances(client(pacs.connection), pacs.studies, pacs.query, pacs.limit)
    except requests.exceptions.RequestException as exc:
        raise PacsError(explain(exc, "search", url)) from None
    images = [r for r in refs if is_image(r)]
    with store.sessions.begin() as session:
        project = get_project(session, request.project)
        known = known_instances(session, project.id) if project is not None else set()
    wanted = [r for r in images if r.sop not in known]
    if pacs.studies and not refs:
        raise PacsError(f"search: no instance of study {', '.join(pacs.studies)} on {url} (deleted, or a wrong UID)")
    info = SourceInfo(kind="dicomweb", total=len(wanted), class_names=None, split=None, image_size=None,
                      layout="dicomweb")
    fetcher = _Fetcher(pacs.connection)
    report = ingest(store, dataclasses.replace(request, source=None, unlabeled=True), info,
                    fetcher.items(wanted), on_progress)
    if len(images) < len(refs):
        report.warnings.append(f"{len(refs) - len(images)} objects that are not images (SEG, SR, presentation "
                               "states…) were left on the server")
    if known and len(wanted) < len(images):
        report.warnings.append(f"{len(images) - len(wanted)} instances imported before were not fetched again")
    if fetcher.interrupted:
        report.warnings.append(fetcher.interrupted)
        report.incomplete = True
    return report
